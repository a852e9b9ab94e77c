import FoundationEssentials

/// Standard base64 (RFC 4648, with padding), as API Gateway and Lambda use it.
public enum Base64 {
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString()
    }

    /// The decoded bytes, or `nil` when `text` is not valid base64.
    public static func decode(_ text: String) -> [UInt8]? {
        Data(base64Encoded: text).map(Array.init)
    }
}
