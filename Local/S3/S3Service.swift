import Crypto
import Foundation
import Logging
import MartletAWS
import NIOCore
import NIOPosix
import NIOHTTP1
import _NIOFileSystem

/// Amazon S3 (REST, XML) on the local endpoint: buckets, objects with ranges and conditions,
/// multipart uploads, listings, CORS, presigned URLs and POST-policy uploads, each checked as
/// S3 checks them. Bodies stream between the socket and blob files: no object sits in memory.
public final class S3Service: Sendable {
    /// The largest single PUT (and part): 5 GiB.
    static let maxObjectSize: Int64 = 5 * 1024 * 1024 * 1024
    /// The smallest part except the last: 5 MiB.
    static let minPartSize: Int64 = 5 * 1024 * 1024
    /// XML request bodies (CORS, CompleteMultipartUpload, Delete) are read whole, up to this size.
    static let maxXMLBody = 2 * 1024 * 1024

    let store: S3Store
    let verifier: SignatureVerifier
    let region: String
    let logger: Logger

    /// `objectsFolder` holds the blob files (`nil`: a temporary folder, for an in-memory endpoint).
    public init(database: SQLiteDatabase, objectsFolder: String, verifier: SignatureVerifier, region: String = "us-east-1", logger: Logger) throws {
        store = try S3Store(database: database, root: objectsFolder)
        self.verifier = verifier
        self.region = region
        self.logger = logger
    }

    /// Removes blobs retired by overwrites and deletes; the endpoint calls it periodically.
    public func sweep() { store.sweepRetired() }

    /// Sets a bucket's CORS rules directly (as the template does); the bucket must exist.
    public func setCORS(_ configuration: S3CORSConfiguration?, bucket: String) throws {
        guard try store.bucketRegion(bucket) != nil else { throw S3Error.noSuchBucket(bucket) }
        try store.setCORS(configuration.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }, of: bucket)
    }

    /// Creates a bucket if it does not exist yet (for resources declared in a template).
    public func ensureBucket(_ name: String) throws {
        guard S3Names.isValidBucket(name) else { throw S3Error.invalidBucketName(name) }
        _ = try store.createBucket(name, region: region)
    }

    /// Answers one S3 request, reading its body from `body` as it needs it.
    public func answer(_ request: HTTPServerRequest, body: HTTPRequestBodyStream) async -> HTTPServerResponse {
        let requestID = RequestID.make()
        let isHead = request.method == .HEAD
        var target: S3Target?
        do {
            let parsed = try S3Target(request)
            target = parsed
            var response = try await route(parsed, request: request, body: body, requestID: requestID)
            addCORS(to: &response, request: request, bucket: parsed.bucket)
            if isHead { response.isHead = true }
            return response
        } catch {
            var failure = error as? S3Error ?? S3Error.internalError("\(error)")
            if failure.status == .internalServerError { logger.error("S3 request failed", metadata: ["error": "\(error)"]) }
            if failure.code == "NoSuchKey", isHead { failure.details = [] }
            var response = failure.response(requestID: requestID, isHead: isHead)
            addCORS(to: &response, request: request, bucket: target?.bucket)
            return response
        }
    }

    private func addCORS(to response: inout HTTPServerResponse, request: HTTPServerRequest, bucket: String?) {
        guard request.method != .OPTIONS, let origin = request.headers.first(name: "Origin"), let bucket,
            let stored = try? store.cors(of: bucket), let configuration = try? JSONDecoder().decode(S3CORSConfiguration.self, from: Data(stored.utf8))
        else { return }
        for (name, value) in configuration.responseHeaders(origin: origin, method: request.method.rawValue) { response.headers.replaceOrAdd(name: name, value: value) }
    }

    // MARK: Routing

    private func route(_ target: S3Target, request: HTTPServerRequest, body: HTTPRequestBodyStream, requestID: String) async throws -> HTTPServerResponse {
        let method = request.method
        if method == .OPTIONS { return try preflight(target, request: request, requestID: requestID) }
        if let unsupported = target.query.keys.first(where: S3Target.unsupportedSubresources.contains) {
            throw S3Error(.notImplemented, "NotImplemented", "The \(unsupported) subresource is not implemented by the local endpoint")
        }
        // A browser form upload carries its credentials in the form, checked against its policy.
        if method == .POST, target.key == nil, let bucket = target.bucket, target.query.isEmpty,
            request.headers.first(name: "Content-Type")?.lowercased().hasPrefix("multipart/form-data") == true
        {
            return try await postObject(bucket: bucket, request: request, body: body, requestID: requestID)
        }
        let signature = try authenticate(request)
        guard let bucket = target.bucket else {
            guard method == .GET else { throw S3Error.methodNotAllowed(method.rawValue, resource: "SERVICE") }
            return try listBuckets(requestID: requestID)
        }
        guard let key = target.key else {
            switch method {
            case .PUT where target.query["cors"] != nil: return try await putBucketCORS(bucket, body: body, requestID: requestID)
            case .PUT: return try await createBucket(bucket, body: body, requestID: requestID)
            case .HEAD: return try headBucket(bucket, requestID: requestID)
            case .GET where target.query["cors"] != nil: return try getBucketCORS(bucket, requestID: requestID)
            case .GET where target.query["location"] != nil: return try getBucketLocation(bucket, requestID: requestID)
            case .GET where target.query["uploads"] != nil: return try listUploads(bucket, requestID: requestID)
            case .GET where target.query["versioning"] != nil: return try getBucketVersioning(bucket, requestID: requestID)
            case .GET: return try listObjects(bucket, query: target.query, requestID: requestID)
            case .DELETE where target.query["cors"] != nil: return try deleteBucketCORS(bucket, requestID: requestID)
            case .DELETE: return try deleteBucket(bucket, requestID: requestID)
            case .POST where target.query["delete"] != nil: return try await deleteObjects(bucket, request: request, body: body, requestID: requestID)
            default: throw S3Error.methodNotAllowed(method.rawValue, resource: "BUCKET")
            }
        }
        guard key.utf8.count <= 1024 else { throw S3Error.keyTooLong(key.utf8.count) }
        switch method {
        case .PUT where target.query["uploadId"] != nil:
            return try await uploadPart(bucket, key: key, query: target.query, request: request, body: body, signature: signature, requestID: requestID)
        case .PUT where request.headers.first(name: "x-amz-copy-source") != nil:
            return try await copyObject(bucket, key: key, request: request, requestID: requestID)
        case .PUT: return try await putObject(bucket, key: key, request: request, body: body, signature: signature, requestID: requestID)
        case .GET where target.query["uploadId"] != nil: return try listParts(bucket, key: key, query: target.query, requestID: requestID)
        case .GET, .HEAD: return try getObject(bucket, key: key, query: target.query, request: request, requestID: requestID)
        case .DELETE where target.query["uploadId"] != nil: return try abortUpload(bucket, key: key, query: target.query, requestID: requestID)
        case .DELETE: return try deleteObject(bucket, key: key, requestID: requestID)
        case .POST where target.query["uploads"] != nil: return try createUpload(bucket, key: key, request: request, requestID: requestID)
        case .POST where target.query["uploadId"] != nil:
            return try await completeUpload(bucket, key: key, query: target.query, body: body, requestID: requestID)
        default: throw S3Error.methodNotAllowed(method.rawValue, resource: "OBJECT")
        }
    }

    // MARK: Authentication

    /// Verifies a header-signed or presigned request; anything else is refused as S3 refuses anonymous access.
    func authenticate(_ request: HTTPServerRequest) throws(S3Error) -> VerifiedSignature {
        let query = request.query ?? ""
        let result: Result<VerifiedSignature, AuthenticationFailure>
        if let authorization = request.headers.first(name: "Authorization") {
            if authorization.hasPrefix("AWS ") {
                throw S3Error.invalidRequest("The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
            }
            guard request.headers.first(name: "x-amz-content-sha256") != nil else {
                throw S3Error.invalidRequest("Missing required header for this request: x-amz-content-sha256")
            }
            result = verifier.verify(request)
        } else if query.contains("X-Amz-Algorithm=") || query.contains("X-Amz-Signature=") || query.contains("X-Amz-Credential=") {
            result = verifier.verifyPresigned(request)
        } else if query.contains("AWSAccessKeyId=") {
            throw S3Error.invalidRequest("The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
        } else {
            throw S3Error.accessDenied
        }
        switch result {
        case .success(let signature): return signature
        case .failure(let failure): throw Self.error(for: failure)
        }
    }

    /// S3's answer to a failed authentication.
    static func error(for failure: AuthenticationFailure) -> S3Error {
        switch failure.kind {
        case .missing: return .accessDenied
        case .malformed: return S3Error(.badRequest, "AuthorizationHeaderMalformed", failure.message)
        case .queryParameters: return S3Error(.badRequest, "AuthorizationQueryParametersError", failure.message)
        case .unknownAccessKey:
            return S3Error(
                .forbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.",
                details: failure.accessKeyID.map { [("AWSAccessKeyId", $0)] } ?? []
            )
        case .invalidToken: return S3Error(.badRequest, "InvalidToken", "The provided token is malformed or otherwise invalid.")
        case .notYetValid: return S3Error(.forbidden, "AccessDenied", "Request is not valid yet")
        case .expired where !failure.details.isEmpty: return S3Error(.forbidden, "AccessDenied", "Request has expired", details: failure.details)
        case .expired:
            return S3Error(.forbidden, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.")
        case .signatureMismatch:
            var details: [(String, String)] = []
            if let key = failure.accessKeyID { details.append(("AWSAccessKeyId", key)) }
            if let stringToSign = failure.stringToSign {
                details.append(("StringToSign", stringToSign))
                details.append(("SignatureProvided", failure.signatureProvided ?? ""))
                details.append(("StringToSignBytes", stringToSign.utf8.map { Hex.encode([$0]) }.joined(separator: " ")))
            }
            if let canonical = failure.canonicalRequest {
                details.append(("CanonicalRequest", canonical))
                details.append(("CanonicalRequestBytes", canonical.utf8.map { Hex.encode([$0]) }.joined(separator: " ")))
            }
            return S3Error(
                .forbidden, "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.", details: details
            )
        }
    }

    // MARK: Buckets

    func requireBucket(_ bucket: String) throws -> String {
        guard let region = try store.bucketRegion(bucket) else { throw S3Error.noSuchBucket(bucket) }
        return region
    }

    private func listBuckets(requestID: String) throws -> HTTPServerResponse {
        var xml = XMLWriter()
        xml.element("ListAllMyBucketsResult", namespace: true) { xml in
            xml.element("Owner") { xml in
                xml.element("ID", S3Target.ownerID)
                xml.element("DisplayName", "martlet")
            }
            xml.element("Buckets") { xml in
                for bucket in (try? store.listBuckets()) ?? [] {
                    xml.element("Bucket") { xml in
                        xml.element("Name", bucket.name)
                        xml.element("CreationDate", Self.isoMilliseconds(bucket.createdMilliseconds))
                        xml.element("BucketRegion", bucket.region)
                    }
                }
            }
        }
        return S3Response.xml(xml, requestID: requestID)
    }

    private func createBucket(_ bucket: String, body: HTTPRequestBodyStream, requestID: String) async throws -> HTTPServerResponse {
        guard S3Names.isValidBucket(bucket) else { throw S3Error.invalidBucketName(bucket) }
        var bucketRegion = "us-east-1"
        let bytes = Array((try await readXMLBody(body)).readableBytesView)
        if !bytes.isEmpty {
            let root = try S3XMLNode.parse(bytes)
            guard root.name == "CreateBucketConfiguration" else { throw S3Error.malformedXML }
            if let constraint = root.value("LocationConstraint"), !constraint.isEmpty {
                guard constraint != "us-east-1" else {
                    throw S3Error(.badRequest, "InvalidLocationConstraint", "The specified location-constraint is not valid", details: [("LocationConstraint", constraint)])
                }
                bucketRegion = constraint
            }
        }
        if try !store.createBucket(bucket, region: bucketRegion) {
            // us-east-1 answers the owner's repeated create with 200 (S3 API reference, CreateBucket).
            guard bucketRegion == "us-east-1", try store.bucketRegion(bucket) == "us-east-1" else { throw S3Error.bucketAlreadyOwnedByYou(bucket) }
        }
        return S3Response.empty(.ok, requestID: requestID, headers: [("Location", "/\(bucket)")])
    }

    private func headBucket(_ bucket: String, requestID: String) throws -> HTTPServerResponse {
        let region = try requireBucket(bucket)
        return S3Response.empty(.ok, requestID: requestID, headers: [("x-amz-bucket-region", region), ("x-amz-access-point-alias", "false")])
    }

    private func getBucketLocation(_ bucket: String, requestID: String) throws -> HTTPServerResponse {
        let region = try requireBucket(bucket)
        var xml = XMLWriter()
        // us-east-1 is the empty constraint (S3 API reference, GetBucketLocation).
        xml.element("LocationConstraint", namespace: true) { $0.text(region == "us-east-1" ? "" : region) }
        return S3Response.xml(xml, requestID: requestID)
    }

    private func getBucketVersioning(_ bucket: String, requestID: String) throws -> HTTPServerResponse {
        _ = try requireBucket(bucket)
        var xml = XMLWriter()
        xml.element("VersioningConfiguration", namespace: true) { _ in }
        return S3Response.xml(xml, requestID: requestID)
    }

    private func deleteBucket(_ bucket: String, requestID: String) throws -> HTTPServerResponse {
        try store.deleteBucket(bucket)
        return S3Response.empty(.noContent, requestID: requestID)
    }

    private func putBucketCORS(_ bucket: String, body: HTTPRequestBodyStream, requestID: String) async throws -> HTTPServerResponse {
        _ = try requireBucket(bucket)
        let configuration = try S3CORSConfiguration.parse(Array(try await readXMLBody(body).readableBytesView))
        try setCORS(configuration, bucket: bucket)
        return S3Response.empty(.ok, requestID: requestID)
    }

    private func getBucketCORS(_ bucket: String, requestID: String) throws -> HTTPServerResponse {
        _ = try requireBucket(bucket)
        guard let configuration = try corsConfiguration(bucket) else { throw S3Error.noSuchCORSConfiguration(bucket) }
        return S3Response.xml(configuration.xml, requestID: requestID)
    }

    private func deleteBucketCORS(_ bucket: String, requestID: String) throws -> HTTPServerResponse {
        _ = try requireBucket(bucket)
        try store.setCORS(nil, of: bucket)
        return S3Response.empty(.noContent, requestID: requestID)
    }

    private func corsConfiguration(_ bucket: String) throws -> S3CORSConfiguration? {
        try store.cors(of: bucket).map { try JSONDecoder().decode(S3CORSConfiguration.self, from: Data($0.utf8)) }
    }

    private func preflight(_ target: S3Target, request: HTTPServerRequest, requestID: String) throws -> HTTPServerResponse {
        guard let bucket = target.bucket else { throw S3Error(.badRequest, "BadRequest", "Insufficient information. Origin request header needed.") }
        _ = try requireBucket(bucket)
        guard let configuration = try corsConfiguration(bucket) else {
            if request.headers.first(name: "Origin") == nil { throw S3Error(.badRequest, "BadRequest", "Insufficient information. Origin request header needed.") }
            throw S3CORSConfiguration.notEnabled
        }
        return S3Response.empty(.ok, requestID: requestID, headers: try configuration.preflight(request.headers))
    }

    private func readXMLBody(_ body: HTTPRequestBodyStream) async throws -> ByteBuffer {
        do {
            return try await body.collect(upTo: Self.maxXMLBody)
        } catch HTTPServerError.bodyTooLarge {
            throw S3Error(.badRequest, "MaxMessageLengthExceeded", "Your request was too big.")
        }
    }

    // MARK: Objects

    /// Metadata from a PUT's (or CreateMultipartUpload's) headers.
    static func metadata(from headers: HTTPHeaders) -> S3ObjectMetadata {
        var metadata = S3ObjectMetadata()
        metadata.contentType = headers.first(name: "Content-Type")
        if let encoding = headers.first(name: "Content-Encoding") {
            let kept = encoding.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0 != "aws-chunked" && !$0.isEmpty }
            metadata.contentEncoding = kept.isEmpty ? nil : kept.joined(separator: ",")
        }
        metadata.contentDisposition = headers.first(name: "Content-Disposition")
        metadata.contentLanguage = headers.first(name: "Content-Language")
        metadata.cacheControl = headers.first(name: "Cache-Control")
        metadata.expires = headers.first(name: "Expires")
        for (name, value) in headers where name.lowercased().hasPrefix("x-amz-meta-") {
            metadata.user.append([String(name.lowercased().dropFirst("x-amz-meta-".count)), value])
        }
        return metadata
    }

    private func putObject(
        _ bucket: String, key: String, request: HTTPServerRequest, body: HTTPRequestBodyStream, signature: VerifiedSignature, requestID: String
    ) async throws -> HTTPServerResponse {
        _ = try requireBucket(bucket)
        let checks = try S3UploadChecks(headers: request.headers, signature: signature)
        guard checks.declaredLength != nil || request.headers.first(name: "Transfer-Encoding") != nil else { throw S3Error.missingContentLength }
        let ifNoneMatch = request.headers.first(name: "If-None-Match")
        if let ifNoneMatch, ifNoneMatch != "*" {
            throw S3Error.notImplemented("If-None-Match")
        }
        if ifNoneMatch != nil, try store.object(bucket: bucket, key: key) != nil { throw S3Error.preconditionFailed("If-None-Match") }
        let received = try await checks.receive(body, into: store.temporaryPath(), maxSize: Self.maxObjectSize, keepingSmallInMemory: true)
        var metadata = Self.metadata(from: request.headers)
        metadata.checksumAlgorithm = received.checksum?.algorithm.rawValue
        metadata.checksumValue = received.checksum?.value
        let inline = received.inline.map { Array($0.readableBytesView) }
        let blob = inline == nil ? try store.adopt(temporary: received.path) : S3Store.newInlineBlob()
        let record = S3ObjectRecord(key: key, blob: blob, size: received.size, etag: received.etag, modifiedMilliseconds: S3Store.nowMilliseconds(), metadata: metadata)
        do {
            try store.putObject(bucket: bucket, record, requireAbsent: ifNoneMatch != nil, inlineBody: inline)
        } catch {
            if inline == nil { store.retire([blob]) }
            throw error
        }
        var headers = [("ETag", "\"\(received.etag)\""), ("x-amz-server-side-encryption", "AES256")]
        if let checksum = received.checksum { headers.append((checksum.algorithm.headerName, checksum.value)) }
        return S3Response.empty(.ok, requestID: requestID, headers: headers)
    }

    private func copyObject(_ bucket: String, key: String, request: HTTPServerRequest, requestID: String) async throws -> HTTPServerResponse {
        _ = try requireBucket(bucket)
        var source = request.headers.first(name: "x-amz-copy-source") ?? ""
        if let question = source.firstIndex(of: "?") { source = String(source[..<question]) }
        source = URIEncoding.decode(source) ?? source
        if source.hasPrefix("/") { source.removeFirst() }
        guard let slash = source.firstIndex(of: "/") else { throw S3Error.invalidArgument("Invalid copy source object key", name: "x-amz-copy-source", value: source) }
        let sourceBucket = String(source[..<slash]), sourceKey = String(source[source.index(after: slash)...])
        _ = try requireBucket(sourceBucket)
        guard let (original, originalBody) = try store.object(bucket: sourceBucket, key: sourceKey, withInlineBody: true) else {
            throw S3Error.noSuchKey(sourceKey)
        }
        let replace = request.headers.first(name: "x-amz-metadata-directive")?.uppercased() == "REPLACE"
        if sourceBucket == bucket, sourceKey == key, !replace {
            throw S3Error.invalidRequest("This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
        }
        let blob: String
        var inline: [UInt8]?
        if S3Store.isInline(original.blob) {
            guard let bytes = try originalBody ?? store.inlineBody(original.blob) else { throw S3Error.noSuchKey(sourceKey) }
            (blob, inline) = (S3Store.newInlineBlob(), bytes)
        } else {
            let temporary = store.temporaryPath()
            try await Self.concatenate([store.blobPath(original.blob)], into: temporary)
            blob = try store.adopt(temporary: temporary)
        }
        var metadata = replace ? Self.metadata(from: request.headers) : original.metadata
        if replace { (metadata.checksumAlgorithm, metadata.checksumValue) = (original.metadata.checksumAlgorithm, original.metadata.checksumValue) }
        let now = S3Store.nowMilliseconds()
        try store.putObject(
            bucket: bucket, S3ObjectRecord(key: key, blob: blob, size: original.size, etag: original.etag, modifiedMilliseconds: now, metadata: metadata),
            inlineBody: inline
        )
        var xml = XMLWriter()
        xml.element("CopyObjectResult", namespace: true) { xml in
            xml.element("LastModified", Self.isoMilliseconds(now))
            xml.element("ETag", "\"\(original.etag)\"")
        }
        return S3Response.xml(xml, requestID: requestID)
    }

    private func getObject(_ bucket: String, key: String, query: [String: String], request: HTTPServerRequest, requestID: String) throws -> HTTPServerResponse {
        _ = try requireBucket(bucket)
        guard let (object, inlineBody) = try store.object(bucket: bucket, key: key, withInlineBody: request.method != .HEAD) else {
            throw S3Error.noSuchKey(key)
        }
        let modified = AWSTimestamp(secondsSince1970: object.modifiedMilliseconds / 1000)
        var headers: [(String, String)] = [
            ("ETag", "\"\(object.etag)\""), ("Last-Modified", modified.httpDate), ("Accept-Ranges", "bytes"), ("x-amz-server-side-encryption", "AES256"),
        ]
        // Preconditions, in RFC 9110's order, as S3 evaluates them.
        if let ifMatch = request.headers.first(name: "If-Match") {
            guard Self.etagList(ifMatch, contains: object.etag) else { throw S3Error.preconditionFailed("If-Match") }
        } else if let text = request.headers.first(name: "If-Unmodified-Since"), let since = AWSTimestamp(httpDate: text), modified > since {
            throw S3Error.preconditionFailed("If-Unmodified-Since")
        }
        if let ifNoneMatch = request.headers.first(name: "If-None-Match") {
            if Self.etagList(ifNoneMatch, contains: object.etag) { return S3Response.empty(.notModified, requestID: requestID, headers: headers) }
        } else if let text = request.headers.first(name: "If-Modified-Since"), let since = AWSTimestamp(httpDate: text), modified <= since {
            return S3Response.empty(.notModified, requestID: requestID, headers: headers)
        }
        let metadata = object.metadata
        headers.append(("Content-Type", query["response-content-type"] ?? metadata.contentType ?? "binary/octet-stream"))
        let optional: [(String, String, String?)] = [
            ("Content-Encoding", "response-content-encoding", metadata.contentEncoding),
            ("Content-Disposition", "response-content-disposition", metadata.contentDisposition),
            ("Content-Language", "response-content-language", metadata.contentLanguage),
            ("Cache-Control", "response-cache-control", metadata.cacheControl),
            ("Expires", "response-expires", metadata.expires),
        ]
        for (header, parameter, stored) in optional {
            if let value = query[parameter] ?? stored { headers.append((header, value)) }
        }
        for pair in metadata.user where pair.count == 2 { headers.append(("x-amz-meta-\(pair[0])", pair[1])) }
        if let parts = metadata.partsCount { headers.append(("x-amz-mp-parts-count", String(parts))) }
        var offset: Int64 = 0
        var length = object.size
        var status = HTTPResponseStatus.ok
        if let rangeHeader = request.headers.first(name: "Range"), let range = try Self.byteRange(rangeHeader, size: object.size) {
            (offset, length, status) = (range.lowerBound, range.upperBound - range.lowerBound, .partialContent)
            headers.append(("Content-Range", "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(object.size)"))
        } else if request.headers.first(name: "x-amz-checksum-mode")?.uppercased() == "ENABLED", let algorithm = metadata.checksumAlgorithm,
            let value = metadata.checksumValue, let known = S3ChecksumAlgorithm(rawValue: algorithm)
        {
            headers.append((known.headerName, value))
            headers.append(("x-amz-checksum-type", "FULL_OBJECT"))
        }
        var response = S3Response.empty(status, requestID: requestID, headers: headers)
        if request.method == .HEAD {
            response.headers.replaceOrAdd(name: "Content-Length", value: String(length))
        } else if S3Store.isInline(object.blob) {
            guard let bytes = try inlineBody ?? store.inlineBody(object.blob) else { throw S3Error.noSuchKey(key) }
            response.body = ByteBuffer(bytes: bytes[Int(offset)..<Int(offset + length)])
        } else if length <= S3SmallFiles.limit, let body = S3SmallFiles.read(store.blobPath(object.blob), offset: offset, length: length) {
            response.body = body
        } else {
            response.file = .init(path: store.blobPath(object.blob), offset: offset, length: length)
        }
        return response
    }

    /// Whether an `If-Match`/`If-None-Match` list names `etag` (or is `*`).
    static func etagList(_ header: String, contains etag: String) -> Bool {
        header.split(separator: ",").contains { item in
            var item = item.trimmingCharacters(in: .whitespaces)
            if item == "*" { return true }
            if item.hasPrefix("W/") { item.removeFirst(2) }
            return item.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) == etag
        }
    }

    /// The byte range a `Range` header asks for, or nil to send the whole object (a header S3
    /// ignores: not `bytes=`, several ranges, or malformed). Unsatisfiable ranges are `InvalidRange`.
    static func byteRange(_ header: String, size: Int64) throws(S3Error) -> Range<Int64>? {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return nil }
        let spec = header.dropFirst(6).trimmingCharacters(in: .whitespaces)
        guard let dash = spec.firstIndex(of: "-") else { return nil }
        let first = spec[..<dash], last = spec[spec.index(after: dash)...]
        if first.isEmpty {
            guard let suffix = Int64(last) else { return nil }
            guard suffix > 0, size > 0 else { throw S3Error.invalidRange(header, size: size) }
            return max(0, size - suffix)..<size
        }
        guard let start = Int64(first) else { return nil }
        let end: Int64
        if last.isEmpty {
            end = size - 1
        } else {
            guard let value = Int64(last), value >= start else { return nil }
            end = min(value, size - 1)
        }
        guard start < size else { throw S3Error.invalidRange(header, size: size) }
        return start..<(end + 1)
    }

    private func deleteObject(_ bucket: String, key: String, requestID: String) throws -> HTTPServerResponse {
        _ = try requireBucket(bucket)
        try store.deleteObject(bucket: bucket, key: key)
        return S3Response.empty(.noContent, requestID: requestID)
    }

    private func deleteObjects(_ bucket: String, request: HTTPServerRequest, body: HTTPRequestBodyStream, requestID: String) async throws -> HTTPServerResponse {
        _ = try requireBucket(bucket)
        let bytes = Array(try await readXMLBody(body).readableBytesView)
        if let md5 = request.headers.first(name: "Content-MD5") {
            guard let sent = Base64.decode(md5), sent.count == 16 else { throw S3Error.invalidDigest }
            guard sent == Array(Insecure.MD5.hash(data: bytes)) else { throw S3Error.badDigest }
        }
        let root = try S3XMLNode.parse(bytes)
        let objects = root.all("Object")
        guard root.name == "Delete", !objects.isEmpty, objects.count <= 1000 else { throw S3Error.malformedXML }
        let quiet = root.value("Quiet")?.lowercased() == "true"
        var xml = XMLWriter()
        xml.element("DeleteResult", namespace: true) { xml in
            for object in objects {
                let key = object.first("Key")?.text ?? ""
                do {
                    guard !key.isEmpty else { throw S3Error.malformedXML }
                    try store.deleteObject(bucket: bucket, key: key)
                    if !quiet { xml.element("Deleted") { $0.element("Key", key) } }
                } catch {
                    let failure = error as? S3Error ?? S3Error.internalError("\(error)")
                    xml.element("Error") { xml in
                        xml.element("Key", key)
                        xml.element("Code", failure.code)
                        xml.element("Message", failure.message)
                    }
                }
            }
        }
        return S3Response.xml(xml, requestID: requestID)
    }

    // MARK: Listing

    private func listObjects(_ bucket: String, query: [String: String], requestID: String) throws -> HTTPServerResponse {
        _ = try requireBucket(bucket)
        let isV2 = query["list-type"] == "2"
        if let type = query["list-type"], type != "2" { throw S3Error.invalidArgument("Invalid List Type specified", name: "list-type", value: type) }
        var maxKeys = 1000
        if let text = query["max-keys"] {
            guard let value = Int(text), value >= 0 else { throw S3Error.invalidArgument("Provided max-keys not an integer or within integer range", name: "max-keys", value: text) }
            maxKeys = min(value, 1000)
        }
        let urlEncoded: Bool
        switch query["encoding-type"] {
        case nil: urlEncoded = false
        case "url": urlEncoded = true
        case let other?: throw S3Error.invalidArgument("Invalid Encoding Method specified in Request", name: "encoding-type", value: other)
        }
        let prefix = query["prefix"] ?? ""
        let delimiter = query["delimiter"].flatMap { $0.isEmpty ? nil : $0 }
        var cursor = ListCursor(after: nil, skipPrefix: nil)
        if isV2 {
            if let token = query["continuation-token"] {
                guard let decoded = ListCursor(token: token) else { throw S3Error.invalidArgument("The continuation token provided is incorrect", name: "continuation-token", value: token) }
                cursor = decoded
            } else if let startAfter = query["start-after"], !startAfter.isEmpty {
                cursor.after = startAfter
            }
        } else if let marker = query["marker"], !marker.isEmpty {
            cursor.after = marker
        }
        let page = try listPage(bucket: bucket, prefix: prefix, delimiter: delimiter, cursor: cursor, maxKeys: maxKeys)
        func encode(_ text: String) -> String { urlEncoded ? URIEncoding.encode(text, keepingSlashes: true) : text }
        var xml = XMLWriter()
        xml.element("ListBucketResult", namespace: true) { xml in
            xml.element("Name", bucket)
            xml.element("Prefix", encode(prefix))
            if isV2 {
                if let token = query["continuation-token"] { xml.element("ContinuationToken", token) }
                if let startAfter = query["start-after"] { xml.element("StartAfter", encode(startAfter)) }
                xml.element("KeyCount", String(page.objects.count + page.commonPrefixes.count))
            } else {
                xml.element("Marker", encode(query["marker"] ?? ""))
                if page.isTruncated, delimiter != nil, let next = page.lastEntry { xml.element("NextMarker", encode(next)) }
            }
            xml.element("MaxKeys", String(maxKeys))
            if let delimiter { xml.element("Delimiter", encode(delimiter)) }
            if urlEncoded { xml.element("EncodingType", "url") }
            xml.element("IsTruncated", page.isTruncated ? "true" : "false")
            if isV2, page.isTruncated, let next = page.nextCursor { xml.element("NextContinuationToken", next.token) }
            for object in page.objects {
                xml.element("Contents") { xml in
                    xml.element("Key", encode(object.key))
                    xml.element("LastModified", Self.isoMilliseconds(object.modifiedMilliseconds))
                    xml.element("ETag", "\"\(object.etag)\"")
                    if let algorithm = object.metadata.checksumAlgorithm { xml.element("ChecksumAlgorithm", algorithm) }
                    xml.element("Size", String(object.size))
                    if !isV2 {
                        xml.element("Owner") { xml in
                            xml.element("ID", S3Target.ownerID)
                            xml.element("DisplayName", "martlet")
                        }
                    }
                    xml.element("StorageClass", "STANDARD")
                }
            }
            for common in page.commonPrefixes {
                xml.element("CommonPrefixes") { $0.element("Prefix", encode(common)) }
            }
        }
        return S3Response.xml(xml, requestID: requestID)
    }

    /// Where a listing resumes: after a key, and past every key under a common prefix already returned.
    struct ListCursor: Equatable {
        var after: String?
        var skipPrefix: String?

        /// The opaque continuation token.
        var token: String {
            let text = skipPrefix.map { "p:" + $0 } ?? "k:" + (after ?? "")
            return Base64.encode(Array(text.utf8))
        }

        init(after: String?, skipPrefix: String?) {
            self.after = after
            self.skipPrefix = skipPrefix
        }

        init?(token: String) {
            guard let bytes = Base64.decode(token), let text = String(validating: bytes, as: UTF8.self), text.count >= 2 else { return nil }
            let value = String(text.dropFirst(2))
            switch text.prefix(2) {
            case "k:": self.init(after: value, skipPrefix: nil)
            case "p:": self.init(after: value, skipPrefix: value)
            default: return nil
            }
        }
    }

    struct ListPage {
        var objects: [S3ObjectRecord] = []
        var commonPrefixes: [String] = []
        var isTruncated = false
        var nextCursor: ListCursor?
        /// The last key or common prefix returned (ListObjects v1's `NextMarker`).
        var lastEntry: String?
    }

    /// One page of a listing: up to `maxKeys` keys and common prefixes together, in key order.
    func listPage(bucket: String, prefix: String, delimiter: String?, cursor: ListCursor, maxKeys: Int) throws -> ListPage {
        var page = ListPage()
        var after = cursor.after
        var skipPrefix = cursor.skipPrefix
        var count = 0
        scan: while true {
            let batch = try store.objects(bucket: bucket, prefix: prefix, after: after, limit: 1000)
            if batch.isEmpty { break }
            for object in batch {
                after = object.key
                if let skip = skipPrefix, object.key.hasPrefix(skip) { continue }
                var common: String?
                if let delimiter, let range = object.key.utf8.dropFirst(prefix.utf8.count).firstRange(of: delimiter.utf8) {
                    common = String(object.key.utf8[object.key.utf8.startIndex..<range.upperBound])
                }
                if count == maxKeys {
                    page.isTruncated = true
                    break scan
                }
                count += 1
                if let common {
                    page.commonPrefixes.append(common)
                    page.lastEntry = common
                    page.nextCursor = ListCursor(after: common, skipPrefix: common)
                    skipPrefix = common
                } else {
                    page.objects.append(object)
                    page.lastEntry = object.key
                    page.nextCursor = ListCursor(after: object.key, skipPrefix: nil)
                }
            }
            if batch.count < 1000 { break }
        }
        return page
    }

    private func listUploads(_ bucket: String, requestID: String) throws -> HTTPServerResponse {
        _ = try requireBucket(bucket)
        var xml = XMLWriter()
        xml.element("ListMultipartUploadsResult", namespace: true) { xml in
            xml.element("Bucket", bucket)
            xml.element("KeyMarker", "")
            xml.element("UploadIdMarker", "")
            xml.element("MaxUploads", "1000")
            xml.element("IsTruncated", "false")
            for upload in (try? store.uploads(bucket: bucket)) ?? [] {
                xml.element("Upload") { xml in
                    xml.element("Key", upload.key)
                    xml.element("UploadId", upload.id)
                    xml.element("Initiated", Self.isoMilliseconds(upload.createdMilliseconds))
                    xml.element("StorageClass", "STANDARD")
                }
            }
        }
        return S3Response.xml(xml, requestID: requestID)
    }

    // MARK: Multipart uploads

    private func createUpload(_ bucket: String, key: String, request: HTTPServerRequest, requestID: String) throws -> HTTPServerResponse {
        _ = try requireBucket(bucket)
        var metadata = Self.metadata(from: request.headers)
        metadata.checksumAlgorithm = request.headers.first(name: "x-amz-checksum-algorithm")?.uppercased()
        let id = try store.createUpload(bucket: bucket, key: key, metadata: metadata)
        var xml = XMLWriter()
        xml.element("InitiateMultipartUploadResult", namespace: true) { xml in
            xml.element("Bucket", bucket)
            xml.element("Key", key)
            xml.element("UploadId", id)
        }
        return S3Response.xml(xml, requestID: requestID)
    }

    private func requireUpload(_ query: [String: String], bucket: String, key: String) throws -> (id: String, metadata: S3ObjectMetadata) {
        _ = try requireBucket(bucket)
        let id = query["uploadId"] ?? ""
        guard let upload = try store.upload(id, bucket: bucket), upload.key == key else { throw S3Error.noSuchUpload(id) }
        return (id, upload.metadata)
    }

    private func uploadPart(
        _ bucket: String, key: String, query: [String: String], request: HTTPServerRequest, body: HTTPRequestBodyStream, signature: VerifiedSignature,
        requestID: String
    ) async throws -> HTTPServerResponse {
        guard let text = query["partNumber"], let number = Int(text), (1...10_000).contains(number) else {
            throw S3Error.invalidArgument("Part number must be an integer between 1 and 10000, inclusive", name: "partNumber", value: query["partNumber"] ?? "")
        }
        let upload = try requireUpload(query, bucket: bucket, key: key)
        let checks = try S3UploadChecks(headers: request.headers, signature: signature)
        let received = try await checks.receive(body, into: store.temporaryPath(), maxSize: Self.maxObjectSize)
        let blob = try store.adopt(temporary: received.path)
        let part = S3PartRecord(number: number, blob: blob, size: received.size, etag: received.etag, md5: received.md5, modifiedMilliseconds: S3Store.nowMilliseconds())
        guard try store.putPart(upload: upload.id, part) else {
            store.retire([blob])
            throw S3Error.noSuchUpload(upload.id)
        }
        var headers = [("ETag", "\"\(received.etag)\""), ("x-amz-server-side-encryption", "AES256")]
        if let checksum = received.checksum { headers.append((checksum.algorithm.headerName, checksum.value)) }
        return S3Response.empty(.ok, requestID: requestID, headers: headers)
    }

    private func listParts(_ bucket: String, key: String, query: [String: String], requestID: String) throws -> HTTPServerResponse {
        let upload = try requireUpload(query, bucket: bucket, key: key)
        let marker = Int(query["part-number-marker"] ?? "0") ?? 0
        let maxParts = min(Int(query["max-parts"] ?? "1000") ?? 1000, 1000)
        let remaining = try store.parts(upload: upload.id).filter { $0.number > marker }
        let page = remaining.prefix(maxParts)
        var xml = XMLWriter()
        xml.element("ListPartsResult", namespace: true) { xml in
            xml.element("Bucket", bucket)
            xml.element("Key", key)
            xml.element("UploadId", upload.id)
            xml.element("PartNumberMarker", String(marker))
            if let last = page.last { xml.element("NextPartNumberMarker", String(last.number)) }
            xml.element("MaxParts", String(maxParts))
            xml.element("IsTruncated", remaining.count > maxParts ? "true" : "false")
            xml.element("StorageClass", "STANDARD")
            for part in page {
                xml.element("Part") { xml in
                    xml.element("PartNumber", String(part.number))
                    xml.element("LastModified", Self.isoMilliseconds(part.modifiedMilliseconds))
                    xml.element("ETag", "\"\(part.etag)\"")
                    xml.element("Size", String(part.size))
                }
            }
        }
        return S3Response.xml(xml, requestID: requestID)
    }

    private func abortUpload(_ bucket: String, key: String, query: [String: String], requestID: String) throws -> HTTPServerResponse {
        let upload = try requireUpload(query, bucket: bucket, key: key)
        guard try store.finishUpload(upload.id, bucket: bucket, object: nil) else { throw S3Error.noSuchUpload(upload.id) }
        return S3Response.empty(.noContent, requestID: requestID)
    }

    private func completeUpload(_ bucket: String, key: String, query: [String: String], body: HTTPRequestBodyStream, requestID: String) async throws -> HTTPServerResponse {
        let upload = try requireUpload(query, bucket: bucket, key: key)
        let root = try S3XMLNode.parse(Array(try await readXMLBody(body).readableBytesView))
        guard root.name == "CompleteMultipartUpload" else { throw S3Error.malformedXML }
        var requested: [(number: Int, etag: String)] = []
        for node in root.all("Part") {
            guard let number = node.value("PartNumber").flatMap(Int.init), let etag = node.value("ETag") else { throw S3Error.malformedXML }
            requested.append((number, etag.trimmingCharacters(in: CharacterSet(charactersIn: "\""))))
        }
        guard !requested.isEmpty else { throw S3Error.invalidRequest("You must specify at least one part") }
        for index in requested.indices.dropFirst() where requested[index].number <= requested[index - 1].number { throw S3Error.invalidPartOrder }
        let stored = Dictionary(try store.parts(upload: upload.id).map { ($0.number, $0) }, uniquingKeysWith: { first, _ in first })
        var chosen: [S3PartRecord] = []
        for (index, request) in requested.enumerated() {
            guard let part = stored[request.number], part.etag == request.etag else { throw S3Error.invalidPart }
            if index < requested.count - 1, part.size < Self.minPartSize {
                var error = S3Error.entityTooSmall(proposed: part.size, min: Self.minPartSize)
                error.details += [("PartNumber", String(part.number)), ("ETag", part.etag)]
                throw error
            }
            chosen.append(part)
        }
        let temporary = store.temporaryPath()
        try await Self.concatenate(chosen.map { store.blobPath($0.blob) }, into: temporary)
        let blob = try store.adopt(temporary: temporary)
        let etag = Hex.encode(Insecure.MD5.hash(data: chosen.flatMap(\.md5))) + "-\(chosen.count)"
        var metadata = upload.metadata
        metadata.partsCount = chosen.count
        metadata.checksumAlgorithm = nil
        let record = S3ObjectRecord(key: key, blob: blob, size: chosen.reduce(0) { $0 + $1.size }, etag: etag, modifiedMilliseconds: S3Store.nowMilliseconds(), metadata: metadata)
        guard try store.finishUpload(upload.id, bucket: bucket, object: record) else {
            store.retire([blob])
            throw S3Error.noSuchUpload(upload.id)
        }
        var xml = XMLWriter()
        xml.element("CompleteMultipartUploadResult", namespace: true) { xml in
            xml.element("Location", "/\(bucket)/\(URIEncoding.encode(key, keepingSlashes: true))")
            xml.element("Bucket", bucket)
            xml.element("Key", key)
            xml.element("ETag", "\"\(etag)\"")
        }
        return S3Response.xml(xml, requestID: requestID)
    }

    /// Writes the files one after another into a new file.
    static func concatenate(_ paths: [String], into destination: String) async throws {
        // In the kernel (sendfile): the bytes never cross into this process, so completing a
        // multipart upload costs a page-cache copy rather than a read and a write per MiB.
        try await NIOThreadPool.singleton.runIfActive {
            do {
                let output = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                guard output >= 0 else { throw S3Error.internalError("open \(destination): \(errno)") }
                defer { close(output) }
                for path in paths {
                    let input = open(path, O_RDONLY | O_CLOEXEC)
                    guard input >= 0 else { throw S3Error.internalError("open \(path): \(errno)") }
                    defer { close(input) }
                    try copyAll(from: input, to: output)
                }
            } catch {
                unlink(destination)
                throw error
            }
        }
    }

    /// Copies the rest of `input` to `output`, in the kernel where it can, with reads and writes where it cannot.
    private static func copyAll(from input: Int32, to output: Int32) throws {
        while true {
            let copied = sendfile(output, input, nil, 1 << 30)
            if copied > 0 { continue }
            if copied == 0 { return }
            if errno == EINTR { continue }
            guard errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP else { throw S3Error.internalError("sendfile: \(errno)") }
            break
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw S3Error.internalError("read: \(errno)") }
            if count == 0 { return }
            var done = 0
            while done < count {
                let written = buffer.withUnsafeBytes { write(output, $0.baseAddress! + done, count - done) }
                if written < 0, errno == EINTR { continue }
                guard written > 0 else { throw S3Error.internalError("write: \(errno)") }
                done += written
            }
        }
    }

    // MARK: Formatting

    /// `2009-10-12T17:50:30.000Z`.
    static func isoMilliseconds(_ milliseconds: Int64) -> String {
        let seconds = AWSTimestamp(secondsSince1970: milliseconds / 1000).iso8601
        let fraction = String(milliseconds % 1000)
        return seconds.dropLast() + "." + String(repeating: "0", count: 3 - fraction.count) + fraction + "Z"
    }
}

/// What an S3 request addresses: a bucket (from the path, or from the host for virtual-hosted
/// style) and a key, with the query's subresources and parameters decoded.
struct S3Target: Sendable {
    var bucket: String?
    var key: String?
    var query: [String: String]

    static let ownerID = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a"

    /// Subresources S3 has that the local endpoint does not: answered 501 rather than ignored.
    static let unsupportedSubresources: Set<String> = [
        "acl", "policy", "tagging", "lifecycle", "website", "replication", "encryption", "notification", "logging", "versions", "object-lock",
        "retention", "legal-hold", "torrent", "restore", "select", "accelerate", "requestPayment", "ownershipControls", "publicAccessBlock",
        "analytics", "inventory", "metrics", "intelligent-tiering", "attributes", "policyStatus",
    ]

    init(_ request: HTTPServerRequest) throws(S3Error) {
        query = [:]
        for (name, value) in SignatureVerifier.queryPairs(request.query) where query[name] == nil { query[name] = value }
        var path = Substring(request.path)
        if path.hasPrefix("/") { path = path.dropFirst() }
        if let bucket = Self.virtualHostedBucket(request.headers.first(name: "Host") ?? "") {
            self.bucket = bucket
            key = path.isEmpty ? nil : try Self.decode(path)
            return
        }
        guard !path.isEmpty else { return }
        if let slash = path.firstIndex(of: "/") {
            bucket = try Self.decode(path[..<slash])
            let rest = path[path.index(after: slash)...]
            key = rest.isEmpty ? nil : try Self.decode(rest)
        } else {
            bucket = try Self.decode(path)
        }
    }

    /// The bucket of a virtual-hosted-style host: `bucket.localhost`, `bucket.s3.localhost`,
    /// `bucket.s3.amazonaws.com` or `bucket.s3.<region>.amazonaws.com` (port ignored).
    static func virtualHostedBucket(_ host: String) -> String? {
        var name = host.lowercased()
        if let colon = name.lastIndex(of: ":"), !name.hasSuffix("]") { name = String(name[..<colon]) }
        for suffix in [".s3.localhost", ".localhost"] where name.hasSuffix(suffix) && name.count > suffix.count {
            return String(name.dropLast(suffix.count))
        }
        if name.hasSuffix(".amazonaws.com") || name.hasSuffix(".localhost.localstack.cloud"), let range = name.range(of: ".s3.") {
            return String(name[..<range.lowerBound])
        }
        return nil
    }

    private static func decode(_ text: Substring) throws(S3Error) -> String {
        guard let decoded = URIEncoding.decode(text, plusAsSpace: false) else {
            throw S3Error.invalidArgument("Invalid URI: the path is not valid percent-encoded UTF-8")
        }
        return decoded
    }
}
