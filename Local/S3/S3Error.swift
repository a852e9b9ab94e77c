import NIOCore
import NIOHTTP1

/// An S3 error answer: `<Error><Code>…</Code><Message>…</Message>…</Error>` with S3's status.
struct S3Error: Error, Sendable {
    var status: HTTPResponseStatus
    var code: String
    var message: String
    /// Further elements S3 includes for this error (`BucketName`, `Key`, `ProposedSize`, …).
    var details: [(String, String)] = []
    /// Extra response headers (`Allow` for 405, …).
    var headers: [(String, String)] = []

    init(_ status: HTTPResponseStatus, _ code: String, _ message: String, details: [(String, String)] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
    }

    /// The HTTP answer; HEAD answers carry the status only, as S3's do.
    func response(requestID: String, isHead: Bool = false) -> HTTPServerResponse {
        var headers = S3Response.standardHeaders(requestID: requestID)
        for (name, value) in self.headers { headers.add(name: name, value: value) }
        if isHead {
            var response = HTTPServerResponse(status: status, headers: headers)
            response.isHead = true
            response.headers.replaceOrAdd(name: "Content-Length", value: "0")
            return response
        }
        var xml = XMLWriter()
        xml.open("Error")
        xml.element("Code", code)
        xml.element("Message", message)
        for (name, value) in details { xml.element(name, value) }
        xml.element("RequestId", requestID)
        xml.element("HostId", S3Response.hostID)
        xml.close("Error")
        headers.replaceOrAdd(name: "Content-Type", value: "application/xml")
        return HTTPServerResponse(status: status, headers: headers, body: ByteBuffer(string: xml.document))
    }

    // MARK: The errors S3 answers

    static func noSuchBucket(_ bucket: String) -> Self {
        Self(.notFound, "NoSuchBucket", "The specified bucket does not exist", details: [("BucketName", bucket)])
    }
    static func noSuchKey(_ key: String) -> Self { Self(.notFound, "NoSuchKey", "The specified key does not exist.", details: [("Key", key)]) }
    static func noSuchUpload(_ id: String) -> Self {
        Self(
            .notFound, "NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
            details: [("UploadId", id)]
        )
    }
    static func invalidBucketName(_ bucket: String) -> Self {
        Self(.badRequest, "InvalidBucketName", "The specified bucket is not valid.", details: [("BucketName", bucket)])
    }
    static func bucketNotEmpty(_ bucket: String) -> Self {
        Self(.conflict, "BucketNotEmpty", "The bucket you tried to delete is not empty", details: [("BucketName", bucket)])
    }
    static func bucketAlreadyOwnedByYou(_ bucket: String) -> Self {
        Self(
            .conflict, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.",
            details: [("BucketName", bucket)]
        )
    }
    static func invalidArgument(_ message: String, name: String? = nil, value: String? = nil) -> Self {
        var details: [(String, String)] = []
        if let name { details.append(("ArgumentName", name)) }
        if let value { details.append(("ArgumentValue", value)) }
        return Self(.badRequest, "InvalidArgument", message, details: details)
    }
    static func invalidRequest(_ message: String) -> Self { Self(.badRequest, "InvalidRequest", message) }
    static let malformedXML = Self(.badRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
    static func entityTooLarge(proposed: Int64, max: Int64) -> Self {
        Self(
            .badRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size",
            details: [("ProposedSize", String(proposed)), ("MaxSizeAllowed", String(max))]
        )
    }
    static func entityTooSmall(proposed: Int64, min: Int64) -> Self {
        Self(
            .badRequest, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size",
            details: [("ProposedSize", String(proposed)), ("MinSizeAllowed", String(min))]
        )
    }
    static let badDigest = Self(.badRequest, "BadDigest", "The Content-MD5 you specified did not match what we received.")
    static let invalidDigest = Self(.badRequest, "InvalidDigest", "The Content-MD5 you specified was invalid.")
    static func badChecksum(_ algorithm: String) -> Self {
        Self(.badRequest, "BadDigest", "The \(algorithm) you specified did not match the calculated checksum.")
    }
    static func contentSHA256Mismatch(provided: String, computed: String) -> Self {
        Self(
            .badRequest, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.",
            details: [("ClientComputedContentSHA256", provided), ("S3ComputedContentSHA256", computed)]
        )
    }
    static let incompleteBody = Self(.badRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header")
    static let missingContentLength = Self(.lengthRequired, "MissingContentLength", "You must provide the Content-Length HTTP header.")
    static func keyTooLong(_ length: Int) -> Self {
        Self(.badRequest, "KeyTooLongError", "Your key is too long", details: [("MaxSizeAllowed", "1024"), ("Size", String(length))])
    }
    static func invalidRange(_ range: String, size: Int64) -> Self {
        Self(
            .rangeNotSatisfiable, "InvalidRange", "The requested range is not satisfiable",
            details: [("RangeRequested", range), ("ActualObjectSize", String(size))]
        )
    }
    static func preconditionFailed(_ condition: String) -> Self {
        Self(.preconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold", details: [("Condition", condition)])
    }
    static let invalidPart = Self(
        .badRequest, "InvalidPart",
        "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
    )
    static let invalidPartOrder = Self(.badRequest, "InvalidPartOrder", "The list of parts was not in ascending order. Parts must be ordered by part number.")
    static func noSuchCORSConfiguration(_ bucket: String) -> Self {
        Self(.notFound, "NoSuchCORSConfiguration", "The CORS configuration does not exist", details: [("BucketName", bucket)])
    }
    static func notImplemented(_ what: String) -> Self {
        Self(.notImplemented, "NotImplemented", "A header you provided implies functionality that is not implemented", details: [("Header", what)])
    }
    static func methodNotAllowed(_ method: String, resource: String) -> Self {
        Self(
            .methodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.",
            details: [("Method", method), ("ResourceType", resource)]
        )
    }
    static let accessDenied = Self(.forbidden, "AccessDenied", "Access Denied")
    static func internalError(_ detail: String) -> Self { Self(.internalServerError, "InternalError", "We encountered an internal error. Please try again.") }
}

/// What every S3 answer carries.
enum S3Response {
    static let hostID = "martlet-local"

    static func standardHeaders(requestID: String) -> HTTPHeaders {
        ["x-amz-request-id": requestID, "x-amz-id-2": hostID, "Server": "AmazonS3"]
    }

    /// A `200` (or `status`) with an XML body.
    static func xml(_ writer: XMLWriter, requestID: String, status: HTTPResponseStatus = .ok) -> HTTPServerResponse {
        var headers = standardHeaders(requestID: requestID)
        headers.add(name: "Content-Type", value: "application/xml")
        return HTTPServerResponse(status: status, headers: headers, body: ByteBuffer(string: writer.document))
    }

    /// An answer without a body.
    static func empty(_ status: HTTPResponseStatus, requestID: String, headers extra: [(String, String)] = []) -> HTTPServerResponse {
        var headers = standardHeaders(requestID: requestID)
        for (name, value) in extra { headers.add(name: name, value: value) }
        return HTTPServerResponse(status: status, headers: headers)
    }
}
