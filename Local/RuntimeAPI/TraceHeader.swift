import Foundation

/// X-Ray trace headers, as Lambda's front end makes them for a sampled request.
public enum TraceHeader {
    public static func make() -> String {
        let epoch = String(Int(Date().timeIntervalSince1970), radix: 16)
        return "Root=1-\(epoch)-\(randomHex(bytes: 12));Parent=\(randomHex(bytes: 8));Sampled=1"
    }

    /// `bytes` random bytes as lowercase hex, drawn eight at a time (every invocation makes a header).
    static func randomHex(bytes count: Int) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var generator = SystemRandomNumberGenerator()
        var out: [UInt8] = []
        out.reserveCapacity(count * 2)
        var word: UInt64 = 0
        for index in 0..<count {
            if index % 8 == 0 { word = generator.next() }
            let byte = UInt8(truncatingIfNeeded: word >> (UInt64(index % 8) * 8))
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
