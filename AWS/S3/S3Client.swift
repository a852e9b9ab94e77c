import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// S3 for workers and functions: presigned URLs and POSTs, and streamed object transfers.
///
/// ```swift
/// let s3 = S3Client(aws)
/// let upload = try await s3.presignedURL(.put, bucket: "jobs", key: "in/1.wav", contentType: "audio/wav")
/// try await s3.putObject(bucket: "jobs", key: "out/1.json", body: .file(path: path, length: size))
/// ```
public struct S3Client: Sendable {
    public let aws: AWSClient
    public var addressing: S3AddressingStyle
    /// How long one transfer may take (large objects need long).
    public var transferTimeout: Duration = .seconds(3600)

    public init(_ aws: AWSClient, addressing: S3AddressingStyle = .auto) {
        self.aws = aws
        self.addressing = addressing
    }

    /// A presigner with the current credentials.
    public func presigner() async throws -> S3Presigner {
        S3Presigner(
            credentials: try await aws.credentials.credentials(), region: aws.configuration.region,
            endpoint: aws.configuration.customEndpoint(for: .s3), addressing: addressing
        )
    }

    /// A presigned URL for one object (see ``S3Presigner/presignedURL(_:bucket:key:expiresIn:contentType:at:)``).
    public func presignedURL(
        _ method: S3Presigner.Method, bucket: String, key: String, expiresIn seconds: Int = 3600, contentType: String? = nil
    ) async throws -> String {
        try await presigner().presignedURL(method, bucket: bucket, key: key, expiresIn: seconds, contentType: contentType)
    }

    /// A presigned POST form (see ``S3Presigner/presignedPost(bucket:key:fields:conditions:expiresIn:at:)``).
    public func presignedPost(
        bucket: String, key: String, fields: [(name: String, value: String)] = [], conditions: [PostPolicyCondition] = [],
        expiresIn seconds: Int = 3600
    ) async throws -> PresignedPost {
        try await presigner().presignedPost(bucket: bucket, key: key, fields: fields, conditions: conditions, expiresIn: seconds)
    }

    // MARK: Objects

    /// Uploads an object. Bodies in memory are signed; files and streams are sent in chunks with
    /// `UNSIGNED-PAYLOAD`, so their size is not limited by memory (S3 takes up to 5 GiB in one PUT).
    @discardableResult
    public func putObject(
        bucket: String, key: String, body: RequestBody, contentType: String? = nil, metadata: [String: String] = [:]
    ) async throws -> ObjectWriteResult {
        try S3Names.validate(bucket: bucket, key: key)
        guard body.length <= 5 * 1024 * 1024 * 1024 else {
            throw AWSClientError.invalidArgument("a single PUT takes at most 5 GiB; this body has \(body.length) bytes")
        }
        var headers: [(name: String, value: String)] = [("Content-Type", contentType ?? "binary/octet-stream")]
        for (name, value) in metadata.sorted(by: { $0.key < $1.key }) {
            guard value.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
                throw AWSClientError.invalidArgument("metadata value of \(name) must be printable ASCII")
            }
            headers.append(("x-amz-meta-\(name.lowercased())", value))
        }
        let payload: SigV4Signer.Payload
        if case .bytes(let buffer) = body { payload = .bytes(Array(buffer.readableBytesView)) } else { payload = .unsigned }
        let response = try await aws.send(
            .s3, method: "PUT", url: objectURL(bucket, key), headers: headers, body: body, payload: payload, errors: .xml, timeout: transferTimeout
        )
        _ = try await response.collect(upTo: 64 * 1024)
        return ObjectWriteResult(eTag: response.header("ETag"), versionID: response.header("x-amz-version-id"))
    }

    /// Downloads an object as a stream of chunks; `range` is an HTTP range such as `bytes=0-1023`.
    /// Read the body to the end (or drop it) before making many more requests.
    public func getObject(bucket: String, key: String, range: String? = nil) async throws -> S3Object {
        try S3Names.validate(bucket: bucket, key: key)
        let headers: [(name: String, value: String)] = range.map { [("Range", $0)] } ?? []
        let response = try await aws.send(
            .s3, method: "GET", url: objectURL(bucket, key), headers: headers, payload: .empty, errors: .xml, timeout: transferTimeout
        )
        return S3Object(metadata: ObjectMetadata(response), body: response.body)
    }

    /// Downloads an object into a file, chunk by chunk: written to a temporary file beside it and
    /// renamed into place, so a failed download never leaves a torn file.
    @discardableResult
    public func download(bucket: String, key: String, to path: String) async throws -> ObjectMetadata {
        let object = try await getObject(bucket: bucket, key: key)
        let temporary = path + ".part-\(UInt64.random(in: 0...UInt64.max))"
        do {
            let file = try FileWriter(creating: temporary)
            for try await chunk in object.body { try await file.write(chunk) }
            try await file.sync()
            guard rename(temporary, path) == 0 else { throw FileIOError("cannot move the download to \(path)", errno: errno) }
        } catch {
            unlink(temporary)
            throw error
        }
        return object.metadata
    }

    /// The object's metadata; a missing object is an ``AWSServiceError`` with code `NotFound` and status 404.
    public func headObject(bucket: String, key: String) async throws -> ObjectMetadata {
        try S3Names.validate(bucket: bucket, key: key)
        let response = try await aws.send(.s3, method: "HEAD", url: objectURL(bucket, key), payload: .empty, errors: .xml)
        _ = try await response.collect(upTo: 0)
        return ObjectMetadata(response)
    }

    /// Deletes an object (deleting a missing one succeeds, as in S3).
    public func deleteObject(bucket: String, key: String) async throws {
        try S3Names.validate(bucket: bucket, key: key)
        let response = try await aws.send(.s3, method: "DELETE", url: objectURL(bucket, key), payload: .empty, errors: .xml)
        _ = try await response.collect(upTo: 64 * 1024)
    }

    /// Creates a bucket (for set-up scripts and tests).
    public func createBucket(_ bucket: String) async throws {
        try S3Names.validate(bucket: bucket, key: nil)
        var body = ByteBuffer()
        if aws.configuration.region != "us-east-1" {
            body.writeString("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>\(aws.configuration.region)</LocationConstraint></CreateBucketConfiguration>")
        }
        let response = try await aws.send(
            .s3, method: "PUT", url: presignerWithoutCredentials.bucketURL(bucket), body: .bytes(body),
            payload: .bytes(Array(body.readableBytesView)), errors: .xml
        )
        _ = try await response.collect(upTo: 64 * 1024)
    }

    private var presignerWithoutCredentials: S3Presigner {
        S3Presigner(
            credentials: Credentials(accessKeyID: "", secretAccessKey: ""), region: aws.configuration.region,
            endpoint: aws.configuration.customEndpoint(for: .s3), addressing: addressing
        )
    }

    private func objectURL(_ bucket: String, _ key: String) -> RequestURL { presignerWithoutCredentials.objectURL(bucket: bucket, key: key) }
}

/// What S3 answers to a write.
public struct ObjectWriteResult: Sendable, Equatable {
    /// The quoted ETag (the MD5 of a single-part upload).
    public var eTag: String?
    public var versionID: String?
}

/// An object's metadata, from the headers of GET or HEAD.
public struct ObjectMetadata: Sendable, Equatable {
    public var contentLength: Int64?
    public var contentType: String?
    public var eTag: String?
    public var lastModified: String?
    /// `Content-Range` of a ranged GET.
    public var contentRange: String?
    /// User metadata (`x-amz-meta-*`), names lowercased without the prefix.
    public var userMetadata: [String: String]
    /// 200, or 206 for a ranged GET.
    public var status: Int

    init(_ response: AWSHTTPResponse) {
        contentLength = response.header("Content-Length").flatMap { Int64($0) }
        contentType = response.header("Content-Type")
        eTag = response.header("ETag")
        lastModified = response.header("Last-Modified")
        contentRange = response.header("Content-Range")
        status = response.status
        var metadata: [String: String] = [:]
        for (name, value) in response.headers where name.lowercased().hasPrefix("x-amz-meta-") {
            metadata[String(name.lowercased().dropFirst("x-amz-meta-".count))] = value
        }
        userMetadata = metadata
    }
}

/// A downloaded object: its metadata and its body as a stream of chunks.
public struct S3Object: Sendable {
    public var metadata: ObjectMetadata
    public var body: any AsyncSequence<ByteBuffer, any Error> & Sendable

    /// Reads the body into memory, refusing more than `limit` bytes.
    public func collect(upTo limit: Int) async throws -> ByteBuffer {
        try await AWSHTTPResponse(status: metadata.status, headers: [], body: body).collect(upTo: limit)
    }
}
