import MartletJSON

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension WebSocketRequest: DirectJSONDecodable {
    /// Reads the event API Gateway sends a WebSocket route, as `init(from:)` would decode it.
    public init?(jsonBytes: UnsafeRawBufferPointer) {
        var reader = JSONReader(jsonBytes)
        var headers: [String: String]?, multiValueHeaders: [String: [String]]?
        var query: [String: String]?, multiValueQuery: [String: [String]]?
        var context: Context?, body: String?, isBase64Encoded: Bool?
        do {
            try reader.object { (reader: inout JSONReader, name: String) throws(JSONReader.Failure) in
                switch name {
                case "headers": headers = try reader.stringMap()
                case "multiValueHeaders": multiValueHeaders = try reader.stringListMap()
                case "queryStringParameters": query = try reader.stringMap()
                case "multiValueQueryStringParameters": multiValueQuery = try reader.stringListMap()
                case "requestContext": context = try Context(reading: &reader)
                case "body": body = try reader.optionalString()
                case "isBase64Encoded": isBase64Encoded = try reader.bool()
                default: try reader.skipValue()
                }
            }
        } catch {
            return nil
        }
        guard reader.isAtEnd(), let context, let isBase64Encoded else { return nil }
        self.init(
            headers: headers, multiValueHeaders: multiValueHeaders, queryStringParameters: query, multiValueQueryStringParameters: multiValueQuery,
            requestContext: context, body: body, isBase64Encoded: isBase64Encoded
        )
    }
}

extension WebSocketRequest.Context {
    init(reading reader: inout JSONReader) throws(JSONReader.Failure) {
        var routeKey: String?, eventType: WebSocketRequest.EventType?, extendedRequestId: String?, requestTime: String?
        var messageDirection: String?, stage: String?, connectedAt: Int64?, requestTimeEpoch: Int64?, identity: Identity?
        var requestId: String?, domainName: String?, connectionId: String?, apiId: String?, messageId: String?
        var disconnectStatusCode: Int?, disconnectReason: String?, authorizer: JSONValue?
        try reader.object { (reader: inout JSONReader, name: String) throws(JSONReader.Failure) in
            switch name {
            case "routeKey": routeKey = try reader.string()
            case "eventType":
                guard let type = WebSocketRequest.EventType(rawValue: try reader.string()) else { throw JSONReader.Failure(description: "an unknown eventType") }
                eventType = type
            case "extendedRequestId": extendedRequestId = try reader.optionalString()
            case "requestTime": requestTime = try reader.string()
            case "messageDirection": messageDirection = try reader.optionalString()
            case "stage": stage = try reader.string()
            case "connectedAt": connectedAt = try reader.integer()
            case "requestTimeEpoch": requestTimeEpoch = try reader.integer()
            case "identity":
                var sourceIp: String?, userAgent: String?
                try reader.object { (reader: inout JSONReader, name: String) throws(JSONReader.Failure) in
                    switch name {
                    case "sourceIp": sourceIp = try reader.string()
                    case "userAgent": userAgent = try reader.optionalString()
                    default: try reader.skipValue()
                    }
                }
                guard let sourceIp else { throw JSONReader.Failure(description: "an identity without sourceIp") }
                identity = Identity(sourceIp: sourceIp, userAgent: userAgent)
            case "requestId": requestId = try reader.string()
            case "domainName": domainName = try reader.string()
            case "connectionId": connectionId = try reader.string()
            case "apiId": apiId = try reader.string()
            case "messageId": messageId = try reader.optionalString()
            case "disconnectStatusCode": disconnectStatusCode = reader.takeNull() ? nil : Int(try reader.integer())
            case "disconnectReason": disconnectReason = try reader.optionalString()
            case "authorizer": authorizer = reader.takeNull() ? nil : try JSONValue(reading: &reader)
            default: try reader.skipValue()
            }
        }
        guard let routeKey, let eventType, let requestTime, let stage, let connectedAt, let requestTimeEpoch, let identity, let requestId,
            let domainName, let connectionId, let apiId
        else { throw JSONReader.Failure(description: "a requestContext without a required member") }
        self.init(
            routeKey: routeKey, eventType: eventType, extendedRequestId: extendedRequestId, requestTime: requestTime, messageDirection: messageDirection,
            stage: stage, connectedAt: connectedAt, requestTimeEpoch: requestTimeEpoch, identity: identity, requestId: requestId, domainName: domainName,
            connectionId: connectionId, apiId: apiId, messageId: messageId, disconnectStatusCode: disconnectStatusCode, disconnectReason: disconnectReason,
            authorizer: authorizer
        )
    }
}

extension WebSocketResponse: DirectJSONEncodable {
    /// The JSON `encode(to:)` writes: members that are nil are left out.
    public var jsonBytes: [UInt8] {
        var object = JSONObjectWriter()
        object.integer("statusCode", statusCode)
        object.stringMap("headers", headers)
        object.stringListMap("multiValueHeaders", multiValueHeaders)
        object.string("body", body)
        object.bool("isBase64Encoded", isBase64Encoded)
        return object.finishedBytes
    }
}

extension WebSocketRequest: DirectJSONEncodable {
    /// The JSON `encode(to:)` writes (members that are nil left out): what the local gateway sends.
    public var jsonBytes: [UInt8] {
        var object = JSONObjectWriter()
        object.stringMap("headers", headers)
        object.stringListMap("multiValueHeaders", multiValueHeaders)
        object.stringMap("queryStringParameters", queryStringParameters)
        object.stringListMap("multiValueQueryStringParameters", multiValueQueryStringParameters)
        object.object("requestContext") { context in
            let request = requestContext
            context.string("routeKey", request.routeKey)
            context.string("eventType", request.eventType.rawValue)
            context.string("extendedRequestId", request.extendedRequestId)
            context.string("requestTime", request.requestTime)
            context.string("messageDirection", request.messageDirection)
            context.string("stage", request.stage)
            context.integer("connectedAt", request.connectedAt)
            context.integer("requestTimeEpoch", request.requestTimeEpoch)
            context.object("identity") { identity in
                identity.string("sourceIp", request.identity.sourceIp)
                identity.string("userAgent", request.identity.userAgent)
            }
            context.string("requestId", request.requestId)
            context.string("domainName", request.domainName)
            context.string("connectionId", request.connectionId)
            context.string("apiId", request.apiId)
            context.string("messageId", request.messageId)
            context.integer("disconnectStatusCode", request.disconnectStatusCode)
            context.string("disconnectReason", request.disconnectReason)
            // Open-shaped and rare (authorizers): written by JSONEncoder.
            if let authorizer = request.authorizer, let json = try? JSONEncoder().encode(authorizer) { context.raw("authorizer", Array(json)) }
        }
        object.string("body", body)
        object.bool("isBase64Encoded", isBase64Encoded)
        return object.finishedBytes
    }
}
