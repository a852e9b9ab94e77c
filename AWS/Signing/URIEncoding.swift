/// Percent-encoding as SigV4 defines it: RFC 3986 unreserved characters (`A-Z a-z 0-9 - _ . ~`)
/// stay, every other byte of the UTF-8 form becomes `%XX` with uppercase hex.
public enum URIEncoding {
    private static let hex = Array("0123456789ABCDEF".utf8)

    /// Encodes `text`; with `keepingSlashes` a `/` stays as it is (object keys in paths).
    public static func encode(_ text: some StringProtocol, keepingSlashes: Bool = false) -> String {
        percentEncoding(text) { isUnreserved($0) || (keepingSlashes && $0 == UInt8(ascii: "/")) }
    }

    /// Escapes every byte that `keep` refuses.
    @inline(__always)
    private static func percentEncoding(_ text: some StringProtocol, keeping keep: (UInt8) -> Bool) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count + 8)
        for byte in text.utf8 {
            if keep(byte) {
                bytes.append(byte)
            } else {
                bytes.append(UInt8(ascii: "%"))
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Decodes `%XX` escapes (and, in form bodies, `+` as space); `nil` when an escape is malformed.
    public static func decode(_ text: some StringProtocol, plusAsSpace: Bool = false) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
                bytes.append(high << 4 | low)
            } else if plusAsSpace && byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Makes a path or query as written in a URL safe to send: bytes that may not appear in a URL
    /// (spaces, non-ASCII, controls) are escaped; existing escapes and reserved characters stay.
    static func escapingUnsafe(_ text: some StringProtocol) -> String {
        percentEncoding(text) { isUnreserved($0) || allowedInURL.contains($0) }
    }

    private static let allowedInURL = Set("%/:@!$&'()*+,;=?".utf8)

    @inline(__always)
    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
