import MartletJSON

/// An event type read straight from the JSON bytes, without JSONDecoder (an event arrives with
/// every invocation). Nil for anything the direct reader does not expect: the runtime then decodes
/// with JSONDecoder, whose answer (a value, or the error reported as `Runtime.UnmarshalError`) stands.
public protocol DirectJSONDecodable: Decodable {
    init?(jsonBytes: UnsafeRawBufferPointer)
}

/// An output type written straight to JSON bytes, without JSONEncoder.
public protocol DirectJSONEncodable: Encodable {
    var jsonBytes: [UInt8] { get }
}

extension JSONValue {
    /// Reads any JSON value, as `init(from:)` decodes it.
    init(reading reader: inout JSONReader) throws(JSONReader.Failure) {
        switch reader.peek() {
        case UInt8(ascii: "\"")?: self = .string(try reader.string())
        case UInt8(ascii: "{")?:
            var object: [String: JSONValue] = [:]
            try reader.object { (reader: inout JSONReader, name: String) throws(JSONReader.Failure) in object[name] = try JSONValue(reading: &reader) }
            self = .object(object)
        case UInt8(ascii: "[")?:
            var array: [JSONValue] = []
            try reader.array { (reader: inout JSONReader) throws(JSONReader.Failure) in array.append(try JSONValue(reading: &reader)) }
            self = .array(array)
        case UInt8(ascii: "t")?, UInt8(ascii: "f")?: self = .bool(try reader.bool())
        default:
            if reader.takeNull() {
                self = .null
            } else {
                self = .number(try reader.number())
            }
        }
    }
}
