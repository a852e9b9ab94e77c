/// Writes one JSON object member by member, in the order given, without Codable: for requests and
/// answers sent on every call. Nil members are left out.
///
/// ```swift
/// var object = JSONObjectWriter()
/// object.string("QueueUrl", url)
/// object.integer("MaxNumberOfMessages", 1)
/// let body = object.finishedBytes  // {"QueueUrl":"…","MaxNumberOfMessages":1}
/// ```
public struct JSONObjectWriter: Sendable {
    private var out: [UInt8] = [UInt8(ascii: "{")]

    public init() { out.reserveCapacity(256) }

    private mutating func key(_ name: String) {
        if out.count > 1 { out.append(UInt8(ascii: ",")) }
        JSONText.appendString(name, to: &out)
        out.append(UInt8(ascii: ":"))
    }

    public mutating func string(_ name: String, _ value: String?) {
        guard let value else { return }
        key(name)
        JSONText.appendString(value, to: &out)
    }

    public mutating func integer(_ name: String, _ value: Int64?) {
        guard let value else { return }
        key(name)
        out.append(contentsOf: String(value).utf8)
    }

    public mutating func integer(_ name: String, _ value: Int?) { integer(name, value.map(Int64.init)) }

    public mutating func bool(_ name: String, _ value: Bool?) {
        guard let value else { return }
        key(name)
        out.append(contentsOf: (value ? "true" : "false").utf8)
    }

    /// An array of strings.
    public mutating func strings(_ name: String, _ values: [String]?) {
        guard let values else { return }
        key(name)
        out.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            JSONText.appendString(value, to: &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    /// `{"name": "value", …}`, names sorted; nothing when nil.
    public mutating func stringMap(_ name: String, _ map: [String: String]?) {
        guard let map else { return }
        object(name) { for (key, value) in map.sorted(by: { $0.key < $1.key }) { $0.string(key, value) } }
    }

    /// `{"name": ["value", …], …}`, names sorted; nothing when nil.
    public mutating func stringListMap(_ name: String, _ map: [String: [String]]?) {
        guard let map else { return }
        object(name) { for (key, values) in map.sorted(by: { $0.key < $1.key }) { $0.strings(key, values) } }
    }

    /// A member whose value is an object, written by `body`.
    public mutating func object(_ name: String, _ body: (inout JSONObjectWriter) -> Void) {
        var inner = JSONObjectWriter()
        body(&inner)
        raw(name, inner.finishedBytes)
    }

    /// An array of objects, each written by `body`.
    public mutating func objects<Element>(_ name: String, _ elements: [Element], _ body: (Element, inout JSONObjectWriter) -> Void) {
        key(name)
        out.append(UInt8(ascii: "["))
        for (index, element) in elements.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            var inner = JSONObjectWriter()
            body(element, &inner)
            out.append(contentsOf: inner.finishedBytes)
        }
        out.append(UInt8(ascii: "]"))
    }

    /// A member whose value is JSON already.
    public mutating func raw(_ name: String, _ json: [UInt8]) {
        key(name)
        out.append(contentsOf: json)
    }

    public var finishedBytes: [UInt8] { out + [UInt8(ascii: "}")] }
    public var finished: String { String(decoding: finishedBytes, as: UTF8.self) }
}
