import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// Writes the small XML documents S3 answers with.
struct XMLWriter {
    private(set) var document = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

    /// Opens an element; the first one of a document gets S3's namespace.
    mutating func open(_ name: String, namespace: Bool = false) {
        document += namespace ? "<\(name) xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">" : "<\(name)>"
    }

    mutating func close(_ name: String) { document += "</\(name)>" }

    /// `<name>escaped text</name>`.
    mutating func element(_ name: String, _ text: String) {
        document += "<\(name)>"
        document += Self.escape(text)
        document += "</\(name)>"
    }

    /// Escaped text inside the open element.
    mutating func text(_ text: String) { document += Self.escape(text) }

    /// `<name>…</name>` around what `body` writes.
    mutating func element(_ name: String, namespace: Bool = false, _ body: (inout XMLWriter) -> Void) {
        open(name, namespace: namespace)
        body(&self)
        close(name)
    }

    static func escape(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "&") || $0 == UInt8(ascii: "<") || $0 == UInt8(ascii: ">") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "'") || $0 == 13 })
        else { return text }
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count + 16)
        for character in text.unicodeScalars {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&apos;"
            case "\r": escaped += "&#13;"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }
}

/// An element of a parsed XML request body (CompleteMultipartUpload, CORSConfiguration, Delete, …).
final class S3XMLNode: @unchecked Sendable {
    let name: String
    fileprivate(set) var text = ""
    fileprivate(set) var children: [S3XMLNode] = []

    init(name: String) { self.name = name }

    /// Children named `name`.
    func all(_ name: String) -> [S3XMLNode] { children.filter { $0.name == name } }
    /// The first child named `name`.
    func first(_ name: String) -> S3XMLNode? { children.first { $0.name == name } }
    /// The text of the first child named `name`, trimmed.
    func value(_ name: String) -> String? { first(name)?.text.trimmingCharacters(in: .whitespacesAndNewlines) }

    /// Parses a document; malformed XML is S3's `MalformedXML`.
    static func parse(_ bytes: [UInt8]) throws(S3Error) -> S3XMLNode {
        let delegate = TreeBuilder()
        let parser = XMLParser(data: Data(bytes))
        parser.shouldProcessNamespaces = true
        parser.delegate = delegate
        guard parser.parse(), let root = delegate.root else { throw S3Error.malformedXML }
        return root
    }

    private final class TreeBuilder: NSObject, XMLParserDelegate {
        var root: S3XMLNode?
        var stack: [S3XMLNode] = []

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            let node = S3XMLNode(name: name)
            if let parent = stack.last { parent.children.append(node) } else { root = node }
            stack.append(node)
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) { stack.removeLast() }

        func parser(_ parser: XMLParser, foundCharacters string: String) { stack.last?.text += string }
    }
}
