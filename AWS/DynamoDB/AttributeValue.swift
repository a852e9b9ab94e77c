/// A DynamoDB attribute value, encoded as DynamoDB's JSON (`{"S": "…"}`, `{"N": "42"}`, …).
public indirect enum AttributeValue: Sendable, Hashable, Codable {
    case s(String)
    /// A number, kept as its decimal text (DynamoDB numbers have 38 digits of precision).
    case n(String)
    case b([UInt8])
    case bool(Bool)
    case null
    case m([String: AttributeValue])
    case l([AttributeValue])
    case ss([String])
    case ns([String])
    case bs([[UInt8]])

    private enum Key: String, CodingKey {
        case S, N, B, BOOL, NULL, M, L, SS, NS, BS
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        guard let key = container.allKeys.first, container.allKeys.count == 1 else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "an attribute value has exactly one type key"))
        }
        func bytes(_ text: String) throws -> [UInt8] {
            guard let bytes = Base64.decode(text) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "invalid base64")
            }
            return bytes
        }
        switch key {
        case .S: self = .s(try container.decode(String.self, forKey: key))
        case .N: self = .n(try container.decode(String.self, forKey: key))
        case .B: self = .b(try bytes(try container.decode(String.self, forKey: key)))
        case .BOOL: self = .bool(try container.decode(Bool.self, forKey: key))
        case .NULL: self = .null
        case .M: self = .m(try container.decode([String: AttributeValue].self, forKey: key))
        case .L: self = .l(try container.decode([AttributeValue].self, forKey: key))
        case .SS: self = .ss(try container.decode([String].self, forKey: key))
        case .NS: self = .ns(try container.decode([String].self, forKey: key))
        case .BS: self = .bs(try container.decode([String].self, forKey: key).map(bytes))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        switch self {
        case .s(let value): try container.encode(value, forKey: .S)
        case .n(let value): try container.encode(value, forKey: .N)
        case .b(let value): try container.encode(Base64.encode(value), forKey: .B)
        case .bool(let value): try container.encode(value, forKey: .BOOL)
        case .null: try container.encode(true, forKey: .NULL)
        case .m(let value): try container.encode(value, forKey: .M)
        case .l(let value): try container.encode(value, forKey: .L)
        case .ss(let value): try container.encode(value, forKey: .SS)
        case .ns(let value): try container.encode(value, forKey: .NS)
        case .bs(let value): try container.encode(value.map(Base64.encode), forKey: .BS)
        }
    }
}

extension AttributeValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    public init(stringLiteral value: String) { self = .s(value) }
    public init(integerLiteral value: Int) { self = .n(String(value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension AttributeValue {
    /// The type descriptor DynamoDB names it by: `S`, `N`, `B`, `BOOL`, `NULL`, `M`, `L`, `SS`, `NS`, `BS`.
    public var typeName: String {
        switch self {
        case .s: "S"
        case .n: "N"
        case .b: "B"
        case .bool: "BOOL"
        case .null: "NULL"
        case .m: "M"
        case .l: "L"
        case .ss: "SS"
        case .ns: "NS"
        case .bs: "BS"
        }
    }

    /// The string, if this is `S`.
    public var string: String? {
        if case .s(let value) = self { return value }
        return nil
    }

    /// The number as an integer, if this is an integral `N`.
    public var integer: Int? {
        if case .n(let value) = self { return Int(value) }
        return nil
    }
}
