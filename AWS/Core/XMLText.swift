/// The little XML reading S3's error bodies need: the text of the first element with a name.
enum XMLText {
    static func firstElement(_ name: String, in document: String) -> String? {
        // Standard-library searching only: Foundation's `range(of:)` would link full Foundation (and ICU) into Lambda zips.
        guard let open = document.firstRange(of: "<\(name)>"), let close = document[open.upperBound...].firstRange(of: "</\(name)>") else { return nil }
        return unescape(document[open.upperBound..<close.lowerBound])
    }

    static func unescape(_ text: Substring) -> String {
        guard text.contains(Character("&")) else { return String(text) }
        return String(text).replacing("&lt;", with: "<").replacing("&gt;", with: ">")
            .replacing("&quot;", with: "\"").replacing("&apos;", with: "'")
            .replacing("&amp;", with: "&")
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }
}
