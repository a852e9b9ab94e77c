#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The policy document of an S3 browser-based POST upload (SigV4), and its evaluation against a form.
///
/// The content length is only known once the file part has been received, so the check comes in two steps:
///
/// ```swift
/// let policy = try S3PostPolicy(base64Policy: fields["policy"]!)
/// if let violation = policy.checkFields(fields, now: .now) { return violation }   // before the file
/// if let violation = policy.checkContentLength(received) { return violation }     // after the file
/// ```
struct S3PostPolicy: Sendable {
    /// One entry of the policy's `conditions`.
    struct Condition: Sendable, Hashable {
        /// What a condition requires.
        enum Requirement: Sendable, Hashable {
            /// The field equals `value` exactly (`{"field": "value"}` or `["eq", "$field", "value"]`).
            case equals(field: String, value: String)
            /// The field starts with `prefix` (`["starts-with", "$field", "prefix"]`).
            case startsWith(field: String, prefix: String)
            /// The upload's size in bytes is within `min...max` (`["content-length-range", min, max]`).
            case contentLengthRange(min: Int64, max: Int64)
        }

        /// What the condition requires.
        let requirement: Requirement
        /// The field as written in the policy, with its `$` (e.g. `$Content-Type`), or `nil` for a length range.
        let fieldAsWritten: String?

        /// The lowercased form field the condition is about, or `nil` for a length range.
        var fieldName: String? {
            switch self.requirement {
            case .equals(let field, _), .startsWith(let field, _): field.lowercased()
            case .contentLengthRange: nil
            }
        }

        /// The condition as S3 quotes it in "Policy Condition failed: …".
        var rendered: String {
            switch self.requirement {
            case .equals(_, let value):
                "[\"eq\", \(S3PostPolicy.jsonString(self.fieldAsWritten ?? "")), \(S3PostPolicy.jsonString(value))]"
            case .startsWith(_, let prefix):
                "[\"starts-with\", \(S3PostPolicy.jsonString(self.fieldAsWritten ?? "")), "
                    + "\(S3PostPolicy.jsonString(prefix))]"
            case .contentLengthRange(let min, let max):
                "[\"content-length-range\", \(min), \(max)]"
            }
        }

        /// Whether `fields` (lowercased names) satisfy the condition; a length range always does here.
        func isSatisfied(by fields: [String: String]) -> Bool {
            switch self.requirement {
            case .equals(let field, let value):
                // A missing field counts as empty, so `["eq", "$x", ""]` accepts its absence.
                return (fields[field.lowercased()] ?? "") == value
            case .startsWith(let field, let prefix):
                let name = field.lowercased()
                let actual = fields[name] ?? ""
                if name == "content-type" {
                    // S3 accepts a comma-separated list of types when each one starts with the prefix.
                    return actual.split(separator: ",", omittingEmptySubsequences: false).allSatisfy {
                        $0.drop { $0 == " " || $0 == "\t" }.hasPrefix(prefix)
                    }
                }
                return actual.hasPrefix(prefix)
            case .contentLengthRange:
                return true
            }
        }
    }

    /// When the policy stops being valid.
    let expiration: Date
    /// The conditions, in policy order.
    let conditions: [Condition]

    /// Form fields that no condition needs to cover.
    static let exemptFields: Set<String> = ["x-amz-signature", "file", "policy", "bucket"]

    /// Decodes the `policy` form field: base64 of the policy JSON.
    /// - Throws: ``S3PostPolicyViolation`` `InvalidPolicyDocument` if it is not a valid policy.
    init(base64Policy: String) throws {
        let compact = base64Policy.filter { !$0.isWhitespace }
        guard let data = Data(base64Encoded: compact) else {
            throw S3PostPolicyViolation.invalidPolicy("Policy is not valid Base64.")
        }
        try self.init(json: data)
    }

    /// Parses the policy JSON.
    /// - Throws: ``S3PostPolicyViolation`` `InvalidPolicyDocument` if it is not a valid policy.
    init(json: Data) throws {
        guard let document = try? JSONDecoder().decode(PolicyJSON.self, from: json),
            case .object(let members) = document
        else {
            throw S3PostPolicyViolation.invalidPolicy("Invalid JSON.")
        }
        guard let expirationValue = members["expiration"] else {
            throw S3PostPolicyViolation.invalidPolicy("Policy missing expiration.")
        }
        guard case .string(let expirationText) = expirationValue,
            let expiration = Self.parseISO8601(expirationText)
        else {
            throw S3PostPolicyViolation.invalidPolicy("Invalid 'expiration' value: '\(expirationValue.text)'")
        }
        guard let conditionsValue = members["conditions"] else {
            throw S3PostPolicyViolation.invalidPolicy("Policy missing conditions.")
        }
        guard case .array(let entries) = conditionsValue else {
            throw S3PostPolicyViolation.invalidPolicy("Invalid 'conditions' value: must be a list.")
        }
        self.expiration = expiration
        self.conditions = try entries.map(Self.parseCondition)
    }

    /// Checks expiry and every field condition, then that no form field is uncovered.
    /// - Parameters:
    ///   - fields: form field names (lowercased) to values, plus `bucket` set to the bucket name.
    ///   - now: the current time.
    /// - Returns: the first violation, or `nil` if the form satisfies the policy (content length aside).
    func checkFields(_ fields: [String: String], now: Date) -> S3PostPolicyViolation? {
        guard now < self.expiration else { return .expired }
        var lowered: [String: String] = [:]
        for (name, value) in fields { lowered[name.lowercased()] = value }
        for condition in self.conditions where !condition.isSatisfied(by: lowered) {
            return .conditionFailed(condition.rendered)
        }
        let covered = Set(self.conditions.compactMap(\.fieldName))
        let extra = lowered.keys.sorted().first { name in
            !Self.exemptFields.contains(name) && !name.hasPrefix("x-ignore-") && !covered.contains(name)
        }
        if let extra { return .extraInputFields(extra) }
        return nil
    }

    /// Checks the uploaded size against every `content-length-range`.
    /// - Returns: `EntityTooSmall` or `EntityTooLarge`, or `nil` if the size is allowed.
    func checkContentLength(_ contentLength: Int) -> S3PostPolicyViolation? {
        let size = Int64(contentLength)
        for condition in self.conditions {
            guard case .contentLengthRange(let min, let max) = condition.requirement else { continue }
            if size > max { return .entityTooLarge(proposedSize: size, maxSizeAllowed: max) }
            if size < min { return .entityTooSmall(proposedSize: size, minSizeAllowed: min) }
        }
        return nil
    }

    /// Both checks in one call, for when the content length is already known.
    func check(fields: [String: String], contentLength: Int, now: Date) -> S3PostPolicyViolation? {
        self.checkFields(fields, now: now) ?? self.checkContentLength(contentLength)
    }

    // MARK: - Parsing

    private static func parseCondition(_ entry: PolicyJSON) throws -> Condition {
        switch entry {
        case .object(let members):
            guard members.count == 1, let (key, value) = members.first, case .string(let text) = value else {
                throw S3PostPolicyViolation.invalidPolicy(
                    "Invalid Simple-Condition: Simple-Conditions must have exactly one property specified."
                )
            }
            let field = key.hasPrefix("$") ? String(key.dropFirst()) : key
            return Condition(requirement: .equals(field: field, value: text), fieldAsWritten: "$" + field)
        case .array(let items):
            guard case .string(let rawOperator) = items.first else {
                throw S3PostPolicyViolation.invalidPolicy("Invalid Condition: \(entry.text)")
            }
            switch rawOperator.lowercased() {
            case "eq", "starts-with":
                guard items.count == 3, case .string(let written) = items[1], let value = items[2].scalarText else {
                    throw S3PostPolicyViolation.invalidPolicy(
                        "Invalid Condition: '\(rawOperator)' takes a field and a value: \(entry.text)"
                    )
                }
                let field = written.hasPrefix("$") ? String(written.dropFirst()) : written
                let requirement: Condition.Requirement =
                    rawOperator.lowercased() == "eq"
                    ? .equals(field: field, value: value) : .startsWith(field: field, prefix: value)
                return Condition(requirement: requirement, fieldAsWritten: written)
            case "content-length-range":
                guard items.count == 3, let min = items[1].integer, let max = items[2].integer, min >= 0 else {
                    throw S3PostPolicyViolation.invalidPolicy(
                        "Invalid Condition: content-length-range takes two non-negative integers: \(entry.text)"
                    )
                }
                return Condition(requirement: .contentLengthRange(min: min, max: max), fieldAsWritten: nil)
            default:
                throw S3PostPolicyViolation.invalidPolicy("Invalid Condition: unknown operator '\(rawOperator)'.")
            }
        default:
            throw S3PostPolicyViolation.invalidPolicy("Invalid Condition: \(entry.text)")
        }
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
    static func parseISO8601(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ digits: Int) -> Int? {
            guard index + digits <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<(index + digits)] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            index += digits
            return value
        }
        func expect(_ character: Character) -> Bool {
            guard index < bytes.count, bytes[index] == character.asciiValue else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
            expect("T"), let hour = number(2), expect(":"), let minute = number(2), expect(":"),
            let second = number(2),
            (1...12).contains(month), (1...Self.daysInMonth(month, year: year)).contains(day),
            hour < 24, minute < 60, second < 61
        else { return nil }
        var fraction = 0.0
        if expect(".") {
            var scale = 0.1
            let start = index
            while index < bytes.count, let digit = bytes[index].asciiDigit {
                fraction += Double(digit) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        var offset = 0
        if expect("Z") {
            offset = 0
        } else if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            let sign = bytes[index] == UInt8(ascii: "+") ? 1 : -1
            index += 1
            guard let offsetHours = number(2), expect(":"), let offsetMinutes = number(2) else { return nil }
            offset = sign * (offsetHours * 3600 + offsetMinutes * 60)
        } else {
            return nil
        }
        guard index == bytes.count else { return nil }
        let days = Self.daysSinceEpoch(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    private static func daysInMonth(_ month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    private static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// A JSON string literal, escaped as S3 renders condition values.
    static func jsonString(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// A reason S3 refuses a POST upload under its policy, with the S3 error it maps to.
struct S3PostPolicyViolation: Error, Sendable, Equatable, CustomStringConvertible {
    /// The S3 error code, e.g. `AccessDenied`.
    let code: String
    /// The HTTP status.
    let httpStatus: Int
    /// The error message, as S3 phrases it.
    let message: String
    /// Further elements of the XML error body, in order (e.g. `ProposedSize`, `MaxSizeAllowed`).
    let extraElements: [(String, String)]

    init(code: String, httpStatus: Int, message: String, extraElements: [(String, String)] = []) {
        self.code = code
        self.httpStatus = httpStatus
        self.message = message
        self.extraElements = extraElements
    }

    /// The policy's expiration has passed.
    static let expired = Self(
        code: "AccessDenied",
        httpStatus: 403,
        message: "Invalid according to Policy: Policy expired."
    )

    /// A condition does not hold; `condition` is its rendering, e.g. `["eq", "$key", "a"]`.
    static func conditionFailed(_ condition: String) -> Self {
        Self(
            code: "AccessDenied",
            httpStatus: 403,
            message: "Invalid according to Policy: Policy Condition failed: \(condition)"
        )
    }

    /// A form field is not covered by any condition.
    static func extraInputFields(_ name: String) -> Self {
        Self(code: "AccessDenied", httpStatus: 403, message: "Invalid according to Policy: Extra input fields: \(name)")
    }

    /// The upload is larger than `content-length-range` allows.
    static func entityTooLarge(proposedSize: Int64, maxSizeAllowed: Int64) -> Self {
        Self(
            code: "EntityTooLarge",
            httpStatus: 400,
            message: "Your proposed upload exceeds the maximum allowed size",
            extraElements: [("ProposedSize", String(proposedSize)), ("MaxSizeAllowed", String(maxSizeAllowed))]
        )
    }

    /// The upload is smaller than `content-length-range` allows.
    static func entityTooSmall(proposedSize: Int64, minSizeAllowed: Int64) -> Self {
        Self(
            code: "EntityTooSmall",
            httpStatus: 400,
            message: "Your proposed upload is smaller than the minimum allowed size",
            extraElements: [("ProposedSize", String(proposedSize)), ("MinSizeAllowed", String(minSizeAllowed))]
        )
    }

    /// The policy document cannot be used.
    static func invalidPolicy(_ detail: String) -> Self {
        Self(code: "InvalidPolicyDocument", httpStatus: 400, message: "Invalid Policy: \(detail)")
    }

    static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.code == rhs.code && lhs.httpStatus == rhs.httpStatus && lhs.message == rhs.message
            && lhs.extraElements.elementsEqual(rhs.extraElements) { $0 == $1 }
    }

    var description: String { "\(self.httpStatus) \(self.code): \(self.message)" }
}

/// The JSON of a policy document, keeping integers exact.
private enum PolicyJSON: Decodable {
    case string(String)
    case integer(Int64)
    case double(Double)
    case bool(Bool)
    case null
    case array([PolicyJSON])
    case object([String: PolicyJSON])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([PolicyJSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: PolicyJSON].self))
        }
    }

    /// The value of a string, number or boolean as text.
    var scalarText: String? {
        switch self {
        case .string(let value): value
        case .integer(let value): String(value)
        case .double(let value): String(value)
        case .bool(let value): String(value)
        default: nil
        }
    }

    /// An integer, or a string holding one.
    var integer: Int64? {
        switch self {
        case .integer(let value): value
        case .double(let value) where value.rounded() == value && abs(value) < 9e18: Int64(value)
        case .string(let value): Int64(value)
        default: nil
        }
    }

    /// A compact rendering for error messages.
    var text: String {
        switch self {
        case .string(let value): S3PostPolicy.jsonString(value)
        case .null: "null"
        case .array(let items): "[" + items.map(\.text).joined(separator: ", ") + "]"
        case .object(let members):
            "{"
                + members.sorted { $0.key < $1.key }.map { "\(S3PostPolicy.jsonString($0.key)): \($0.value.text)" }
                .joined(separator: ", ") + "}"
        default: self.scalarText ?? ""
        }
    }
}

extension UInt8 {
    /// The digit value of an ASCII decimal digit.
    fileprivate var asciiDigit: Int? {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) ? Int(self - UInt8(ascii: "0")) : nil
    }
}
