extension StringProtocol {
    /// The text without leading and trailing spaces, tabs and line breaks. (Foundation's
    /// `trimmingCharacters(in:)` needs full Foundation, which would bring ICU into a Lambda zip.)
    public func trimmingWhitespace() -> String {
        func isSpace(_ character: Character) -> Bool { character == " " || character == "\t" || character == "\n" || character == "\r" || character == "\r\n" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
