import Foundation
import NIOCore
import MartletAWS
import MartletJSON
import NIOHTTP1

/// An error answer of a JSON-protocol service (SQS, DynamoDB): `{"__type": "…#Code", "message": "…"}`.
public struct JSONProtocolError: Error, Sendable, Equatable {
    public var status: HTTPResponseStatus
    /// The full `__type`, namespace included (`com.amazonaws.sqs#QueueDoesNotExist`).
    public var type: String
    public var message: String
    /// SQS's legacy query code for `x-amzn-query-error` (`AWS.SimpleQueueService.NonExistentQueue`).
    public var queryError: String?

    public init(status: HTTPResponseStatus = .badRequest, type: String, message: String, queryError: String? = nil) {
        self.status = status
        self.type = type
        self.message = message
        self.queryError = queryError
    }

    /// The code after the namespace.
    public var code: String { String(type.split(separator: "#").last ?? Substring(type)) }

    /// The HTTP answer.
    public func response(requestID: String) -> HTTPServerResponse {
        var headers: HTTPHeaders = ["x-amzn-RequestId": requestID, "Content-Type": "application/x-amz-json-1.0"]
        if let queryError { headers.add(name: "x-amzn-query-error", value: "\(queryError);\(status.code >= 500 ? "Receiver" : "Sender")") }
        let body = try! JSONSerialization.data(withJSONObject: ["__type": type, "message": message], options: [.sortedKeys])
        return HTTPServerResponse(status: status, headers: headers, body: ByteBuffer(bytes: body))
    }

    /// A body that is not a JSON object.
    public static func serialization(_ detail: String) -> Self {
        Self(type: "com.amazon.coral.service#SerializationException", message: detail)
    }
}

/// JSON-protocol request and response bodies.
enum JSONBody {
    /// The request body as a JSON object; an empty body is `{}`.
    static func object(_ body: ByteBuffer) throws(JSONProtocolError) -> [String: Any] {
        if body.readableBytes == 0 { return [:] }
        guard let value = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView), options: [.fragmentsAllowed]) else {
            throw .serialization("The request body is not valid JSON")
        }
        guard let object = value as? [String: Any] else { throw .serialization("Start of structure or map expected, found \(type(of: value))") }
        return object
    }

    /// A 200 answer with a JSON object.
    static func response(_ object: [String: Any], requestID: String) -> HTTPServerResponse {
        var body = ByteBuffer()
        if !write(object, to: &body) {
            body = ByteBuffer(bytes: (try? JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes])) ?? Data("{}".utf8))
        }
        return HTTPServerResponse(status: .ok, headers: ["x-amzn-RequestId": requestID, "Content-Type": "application/x-amz-json-1.0"], body: body)
    }

    /// Writes the JSON of the values services answer with (strings, integers, booleans, arrays and
    /// objects of them) without Foundation's bridging; false for any other value (the caller then
    /// falls back to JSONSerialization).
    static func write(_ value: Any, to out: inout ByteBuffer) -> Bool {
        // Scalars by their exact type: `as` casts would bridge through NSNumber (1 as a Bool, true as an Int).
        let type = ObjectIdentifier(Swift.type(of: value))
        if type == ObjectIdentifier(String.self) {
            writeString(value as! String, to: &out)
            return true
        }
        if type == ObjectIdentifier(Bool.self) {
            out.writeString(value as! Bool ? "true" : "false")
            return true
        }
        if type == ObjectIdentifier(Int.self) {
            out.writeString(String(value as! Int))
            return true
        }
        if type == ObjectIdentifier(Int64.self) {
            out.writeString(String(value as! Int64))
            return true
        }
        switch value {
        case let object as [String: Any]:
            out.writeInteger(UInt8(ascii: "{"))
            for (index, (key, element)) in object.enumerated() {
                if index > 0 { out.writeInteger(UInt8(ascii: ",")) }
                writeString(key, to: &out)
                out.writeInteger(UInt8(ascii: ":"))
                guard write(element, to: &out) else { return false }
            }
            out.writeInteger(UInt8(ascii: "}"))
        case let array as [Any]:
            out.writeInteger(UInt8(ascii: "["))
            for (index, element) in array.enumerated() {
                if index > 0 { out.writeInteger(UInt8(ascii: ",")) }
                guard write(element, to: &out) else { return false }
            }
            out.writeInteger(UInt8(ascii: "]"))
        default:
            return false
        }
        return true
    }

    private static func writeString(_ text: String, to out: inout ByteBuffer) {
        var bytes: [UInt8] = []
        JSONText.appendString(text, to: &bytes)
        out.writeBytes(bytes)
    }
}
