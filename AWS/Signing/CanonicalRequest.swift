/// SigV4's canonical request, assembled as UTF-8 bytes in one buffer, with the `SignedHeaders`
/// list it names. Both sides of every AWS call build one (the client to sign, the local endpoint
/// to verify), so it is written without intermediate strings: header names are lowercased and
/// sorted in place, values copied as they are unless they need whitespace collapsed.
struct CanonicalRequest {
    /// `METHOD\nURI\nQUERY\nheaders…\n\nsigned;headers\npayloadHash`.
    private(set) var bytes: [UInt8] = []
    /// `content-type;host;x-amz-date`.
    private(set) var signedHeaders: [UInt8] = []

    /// - Parameters:
    ///   - canonicalURI: the path as the service's rules canonicalize it (`SigV4Signer.canonicalURI`).
    ///   - skippingUnsigned: leave out the headers a signer never signs (`SigV4Signer.unsignedHeaders`);
    ///     a verifier takes exactly the headers the client named instead.
    init(
        method: String, canonicalURI: String, query: [RequestURL.QueryItem], headers: [(name: String, value: String)], skippingUnsigned: Bool,
        payloadHash: String
    ) {
        bytes.reserveCapacity(256 + headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 2 } + canonicalURI.utf8.count)
        if method.utf8.contains(where: { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") }) {
            bytes += method.uppercased().utf8
        } else {
            bytes += method.utf8
        }
        bytes.append(UInt8(ascii: "\n"))
        bytes += canonicalURI.utf8
        bytes.append(UInt8(ascii: "\n"))
        if !query.isEmpty { bytes += SigV4Signer.canonicalQuery(query).utf8 }
        bytes.append(UInt8(ascii: "\n"))
        Self.appendHeaders(headers, skippingUnsigned: skippingUnsigned, to: &bytes, names: &signedHeaders)
        bytes.append(UInt8(ascii: "\n"))
        bytes += signedHeaders
        bytes.append(UInt8(ascii: "\n"))
        bytes += payloadHash.utf8
    }

    var text: String { String(decoding: bytes, as: UTF8.self) }
    var signedHeaderList: String { String(decoding: signedHeaders, as: UTF8.self) }

    /// `name:value\n` per header: names lowercased and sorted (repeated headers keep their order
    /// and are joined with commas), values trimmed with inner runs of whitespace collapsed.
    /// The signed-header list goes to `signedHeaders`.
    static func appendHeaders(_ headers: [(name: String, value: String)], skippingUnsigned: Bool, to bytes: inout [UInt8], names signedHeaders: inout [UInt8]) {
        // Every lowercased name in one buffer; entries point into it.
        var names: [UInt8] = []
        names.reserveCapacity(headers.reduce(0) { $0 + $1.name.utf8.count })
        var entries: [(start: Int, count: Int, position: Int)] = []
        entries.reserveCapacity(headers.count)
        for (position, header) in headers.enumerated() {
            let start = names.count
            for byte in header.name.utf8 { names.append(ASCII.lowercased(byte)) }
            let count = names.count - start
            if skippingUnsigned, isUnsigned(names[start...]) {
                names.removeLast(count)
                continue
            }
            entries.append((start, count, position))
        }
        names.withUnsafeBufferPointer { names in
            func name(_ entry: (start: Int, count: Int, position: Int)) -> UnsafeBufferPointer<UInt8> {
                UnsafeBufferPointer(rebasing: names[entry.start..<(entry.start + entry.count)])
            }
            entries.sort { left, right in
                let a = name(left)
                let b = name(right)
                return a.elementsEqual(b) ? left.position < right.position : a.lexicographicallyPrecedes(b)
            }
            for (index, entry) in entries.enumerated() {
                let entryName = name(entry)
                if index > 0, name(entries[index - 1]).elementsEqual(entryName) {
                    bytes[bytes.count - 1] = UInt8(ascii: ",")  // the newline: the value joins the previous one
                } else {
                    if !signedHeaders.isEmpty { signedHeaders.append(UInt8(ascii: ";")) }
                    signedHeaders += entryName
                    bytes += entryName
                    bytes.append(UInt8(ascii: ":"))
                }
                appendCollapsingWhitespace(headers[entry.position].value, to: &bytes)
                bytes.append(UInt8(ascii: "\n"))
            }
        }
    }

    /// Whether a lowercased header name is one signers leave out (`SigV4Signer.unsignedHeaders`).
    static func isUnsigned(_ name: ArraySlice<UInt8>) -> Bool {
        unsignedNames.contains { $0.count == name.count && $0.elementsEqual(name) }
    }

    private static let unsignedNames: [[UInt8]] = SigV4Signer.unsignedHeaders.map { Array($0.utf8) }

    /// A value trimmed, with runs of spaces, tabs and line breaks inside it made one space. Most
    /// values have none, and are copied as they are.
    static func appendCollapsingWhitespace(_ value: String, to bytes: inout [UInt8]) {
        var pendingSpace = false
        var started = false
        for byte in value.utf8 {
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                pendingSpace = started
                continue
            }
            if pendingSpace {
                bytes.append(UInt8(ascii: " "))
                pendingSpace = false
            }
            bytes.append(byte)
            started = true
        }
    }
}

/// ASCII case rules for header names: no Unicode tables needed, no lowercased copies made.
public enum ASCII {
    @inline(__always)
    public static func lowercased(_ byte: UInt8) -> UInt8 { byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte }

    /// `name` in lowercase (header names and schemes are ASCII; most already are lowercase, and come back as they are).
    public static func lowercased(_ name: String) -> String {
        guard name.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else { return name }
        return String(decoding: name.utf8.map(lowercased), as: UTF8.self)
    }

    /// Whether `text` equals `lowercase` (already lowercase) ignoring ASCII case.
    public static func equalsIgnoringCase(_ text: String, _ lowercase: StaticString) -> Bool {
        let expected = UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        guard text.utf8.count == expected.count else { return false }
        return zip(text.utf8, expected).allSatisfy { lowercased($0) == $1 }
    }

    /// Whether two strings are equal ignoring ASCII case.
    public static func equalsIgnoringCase(_ left: String, _ right: String) -> Bool {
        guard left.utf8.count == right.utf8.count else { return false }
        return zip(left.utf8, right.utf8).allSatisfy { lowercased($0) == lowercased($1) }
    }
}

extension Hex {
    /// Appends the lowercase hex of `bytes`.
    static func append(_ bytes: [UInt8], to output: inout [UInt8]) {
        let digits: StaticString = "0123456789abcdef"
        let table = digits.utf8Start
        output.reserveCapacity(output.count + bytes.count * 2)
        for byte in bytes {
            output.append(table[Int(byte >> 4)])
            output.append(table[Int(byte & 0x0F)])
        }
    }
}
