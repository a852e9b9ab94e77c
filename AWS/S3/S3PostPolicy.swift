/// A condition of a presigned POST policy.
public enum PostPolicyCondition: Sendable, Hashable {
    /// The form field must equal the value exactly: `{"acl": "private"}`.
    case equals(field: String, value: String)
    /// The form field must start with the prefix: `["starts-with", "$key", "uploads/"]`.
    case startsWith(field: String, prefix: String)
    /// The uploaded file's size, in bytes, must be within the range: `["content-length-range", 1, 10485760]`.
    case contentLengthRange(min: Int, max: Int)

    var json: PythonJSON.Value {
        switch self {
        case .equals(let field, let value): .object([(field, .string(value))])
        case .startsWith(let field, let prefix): .array([.string("starts-with"), .string("$" + field), .string(prefix)])
        case .contentLengthRange(let min, let max): .array([.string("content-length-range"), .integer(min), .integer(max)])
        }
    }
}

/// What a browser needs for a direct upload: the form's action URL and the fields to post before
/// the `file` field.
public struct PresignedPost: Sendable, Equatable {
    public var url: String
    /// The form fields, in order.
    public var fields: [Field]

    public struct Field: Sendable, Equatable {
        public var name: String
        public var value: String
    }

    /// The value of a field.
    public subscript(field name: String) -> String? { fields.first { $0.name == name }?.value }
}
