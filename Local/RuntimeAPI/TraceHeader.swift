import Foundation

/// X-Ray trace headers, as Lambda's front end makes them for a sampled request.
public enum TraceHeader {
    public static func make() -> String {
        let epoch = String(Int(Date().timeIntervalSince1970), radix: 16)
        let random = (0..<12).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let parent = (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        return "Root=1-\(epoch)-\(random.prefix(24));Parent=\(parent);Sampled=1"
    }
}
