/// JSON text written exactly as Python's `json.dumps` writes it by default (`", "` and `": "`
/// separators, non-ASCII escaped as `\uXXXX`), so that a POST policy we build is byte for byte the
/// one botocore builds for the same inputs.
enum PythonJSON {
    indirect enum Value {
        case string(String)
        case integer(Int)
        case array([Value])
        /// Keys in the order given.
        case object([(String, Value)])
    }

    static func dumps(_ value: Value) -> String {
        var out = ""
        write(value, to: &out)
        return out
    }

    private static func write(_ value: Value, to out: inout String) {
        switch value {
        case .string(let text): writeString(text, to: &out)
        case .integer(let number): out += String(number)
        case .array(let items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += ", " }
                write(item, to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (index, (key, item)) in members.enumerated() {
                if index > 0 { out += ", " }
                writeString(key, to: &out)
                out += ": "
                write(item, to: &out)
            }
            out += "}"
        }
    }

    private static let hex = Array("0123456789abcdef")

    private static func writeString(_ text: String, to out: inout String) {
        out += "\""
        for unit in text.utf16 {
            switch unit {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            case 0x20..<0x7F: out.unicodeScalars.append(Unicode.Scalar(unit)!)
            default:
                out += "\\u"
                for shift in stride(from: 12, through: 0, by: -4) { out.append(hex[Int((unit >> UInt16(shift)) & 0xF)]) }
            }
        }
        out += "\""
    }
}
