import Foundation
import Synchronization

/// What S3 keeps about an object besides its bytes: the headers it answers GETs with.
struct S3ObjectMetadata: Codable, Sendable, Equatable {
    var contentType: String?
    var contentEncoding: String?
    var contentDisposition: String?
    var contentLanguage: String?
    var cacheControl: String?
    var expires: String?
    /// `x-amz-meta-*` headers, names lowercased without the prefix, in the order received.
    var user: [[String]] = []
    /// The flexible checksum stored with the object (`CRC32`, base64 value).
    var checksumAlgorithm: String?
    var checksumValue: String?
    /// The number of parts of an object made by a multipart upload.
    var partsCount: Int?
}

/// An object as stored.
struct S3ObjectRecord: Sendable {
    var key: String
    /// The blob file holding the bytes.
    var blob: String
    var size: Int64
    /// The ETag without quotes: hex MD5, or `md5-of-md5s-N` for a multipart object.
    var etag: String
    var modifiedMilliseconds: Int64
    var metadata: S3ObjectMetadata
}

/// A part of a multipart upload.
struct S3PartRecord: Sendable {
    var number: Int
    var blob: String
    var size: Int64
    var etag: String
    var md5: [UInt8]
    var modifiedMilliseconds: Int64
}

/// S3's state: buckets, object records, multipart uploads and CORS rules in SQLite; object bytes in
/// blob files under the data folder, or, for objects of at most `S3SmallFiles.limit` bytes, in
/// SQLite in their record's own row (`s3_objects.body`, blob names starting with `row-`): a small
/// PUT then writes one row and creates no file (on ext4, creating and removing a file cost more
/// than the rest of the request), and a GET reads record and bytes in one query. Data folders
/// from before keep such bytes in `s3_inline` (blob names `inline-`), which stays readable.
///
/// Blob files are named by random ids, never by keys, so no key can address a path outside the
/// store. Every write goes to a temporary file first, is renamed into `blobs/`, and only then
/// becomes visible through one SQLite transaction: a crash at any point leaves the old object or
/// the new one, never a torn one, and startup removes blobs no record names.
final class S3Store: Sendable {
    let database: SQLiteDatabase
    /// `<data>/s3`: `blobs/` and `tmp/`.
    let root: String
    /// Regions of buckets looked up, by name (see `bucketRegion`).
    private let knownBuckets = Mutex<[String: String]>([:])
    /// Replaced blobs, removed a little later so a GET that has just looked one up can still read it.
    private let retired = Mutex<[(blob: String, after: ContinuousClock.Instant)]>([])
    static let retirementDelay = Duration.seconds(10)

    init(database: SQLiteDatabase, root: String) throws {
        self.database = database
        self.root = root
        for folder in ["blobs", "tmp"] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(folder)", withIntermediateDirectories: true)
        }
        try database.write { db in
            try db.execute("""
                CREATE TABLE IF NOT EXISTS s3_buckets(
                    name TEXT PRIMARY KEY, region TEXT NOT NULL, created_ms INTEGER NOT NULL, cors TEXT);
                CREATE TABLE IF NOT EXISTS s3_objects(
                    bucket TEXT NOT NULL, key TEXT NOT NULL, blob TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
                    modified_ms INTEGER NOT NULL, metadata TEXT NOT NULL, PRIMARY KEY(bucket, key)) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS s3_uploads(
                    id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, created_ms INTEGER NOT NULL, metadata TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS s3_parts(
                    upload TEXT NOT NULL, number INTEGER NOT NULL, blob TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
                    md5 BLOB NOT NULL, modified_ms INTEGER NOT NULL, PRIMARY KEY(upload, number)) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS s3_inline(blob TEXT PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID;
                """)
            if try !db.query("PRAGMA table_info(s3_objects)", []).contains(where: { $0[1].text == "body" }) {
                try db.run("ALTER TABLE s3_objects ADD COLUMN body BLOB", [])
            }
        }
        try removeOrphans()
    }

    // MARK: Blob files

    func blobPath(_ blob: String) -> String { "\(root)/blobs/\(blob)" }

    /// Whether a blob's bytes are in SQLite rather than in a file.
    static func isInline(_ blob: String) -> Bool { blob.hasPrefix("row-") || isInlineTable(blob) }

    /// Bytes in the `s3_inline` table of older data folders, which need removing once retired.
    private static func isInlineTable(_ blob: String) -> Bool { blob.hasPrefix("inline-") }

    /// A fresh name for bytes kept in their record's row.
    static func newInlineBlob() -> String { "row-" + RequestID.make() }

    /// The bytes of an inline blob of the `s3_inline` table (nil once it has been removed).
    func inlineBody(_ blob: String) throws -> [UInt8]? {
        try database.read { db in
            guard case .blob(let bytes)? = try db.query("SELECT body FROM s3_inline WHERE blob = ?", [.text(blob)]).first?[0] else { return nil }
            return bytes
        }
    }

    /// A fresh path for an upload in progress.
    func temporaryPath() -> String { "\(root)/tmp/\(RequestID.make())" }

    /// Moves a finished temporary file into the store; returns its blob name.
    func adopt(temporary path: String) throws -> String {
        let blob = RequestID.make()
        guard rename(path, blobPath(blob)) == 0 else { throw S3Error.internalError("rename failed: \(errno)") }
        return blob
    }

    /// Removes a temporary file that will not be adopted.
    func discard(temporary path: String) { unlink(path) }

    /// Schedules blobs no record names any more for removal (bytes in a row went with it).
    func retire(_ blobs: [String]) {
        let blobs = blobs.filter { !$0.hasPrefix("row-") }
        guard !blobs.isEmpty else { return }
        let after = ContinuousClock.now + Self.retirementDelay
        retired.withLock { list in for blob in blobs { list.append((blob, after)) } }
    }

    /// Removes retired blobs whose delay has passed.
    func sweepRetired(now: ContinuousClock.Instant = .now) {
        let due = retired.withLock { list in
            let due = list.filter { $0.after <= now }
            list.removeAll { $0.after <= now }
            return due
        }
        let inline = due.map(\.blob).filter(Self.isInlineTable)
        for entry in due where !Self.isInline(entry.blob) { unlink(blobPath(entry.blob)) }
        if !inline.isEmpty {
            _ = try? database.write { db in for blob in inline { try db.run("DELETE FROM s3_inline WHERE blob = ?", [.text(blob)]) } }
        }
    }

    /// Startup: temporary files of interrupted uploads, and blobs no record names.
    private func removeOrphans() throws {
        let fileManager = FileManager.default
        for name in (try? fileManager.contentsOfDirectory(atPath: "\(root)/tmp")) ?? [] { unlink("\(root)/tmp/\(name)") }
        let referenced = try database.read { db in
            Set(try db.query("SELECT blob FROM s3_objects UNION ALL SELECT blob FROM s3_parts", []).compactMap { $0[0].text })
        }
        for name in (try? fileManager.contentsOfDirectory(atPath: "\(root)/blobs")) ?? [] where !referenced.contains(name) {
            unlink(blobPath(name))
        }
        _ = try database.write { db in try db.run("DELETE FROM s3_inline WHERE blob NOT IN (SELECT blob FROM s3_objects)", []) }
    }

    // MARK: Buckets

    /// Creates a bucket; `false` when it already exists.
    func createBucket(_ name: String, region: String) throws -> Bool {
        try database.write { db in
            try db.run("INSERT OR IGNORE INTO s3_buckets(name, region, created_ms) VALUES(?, ?, ?)", [.text(name), .text(region), .integer(Self.nowMilliseconds())]) == 1
        }
    }

    /// The bucket's region, or nil when there is no such bucket. Every request asks, so regions are
    /// remembered: this process is the database's only writer, and forgets a bucket it deletes.
    func bucketRegion(_ name: String) throws -> String? {
        if let region = knownBuckets.withLock({ $0[name] }) { return region }
        let region = try database.read { db in try db.query("SELECT region FROM s3_buckets WHERE name = ?", [.text(name)]).first?[0].text }
        if let region { knownBuckets.withLock { $0[name] = region } }
        return region
    }

    func listBuckets() throws -> [(name: String, createdMilliseconds: Int64, region: String)] {
        try database.read { db in
            try db.query("SELECT name, created_ms, region FROM s3_buckets ORDER BY name", []).map { ($0[0].text ?? "", $0[1].integer ?? 0, $0[2].text ?? "") }
        }
    }

    /// Deletes an empty bucket (and its unfinished uploads).
    func deleteBucket(_ name: String) throws(S3Error) {
        let parts: [String]
        do {
            parts = try database.write { db -> [String] in
                guard try !db.query("SELECT 1 FROM s3_buckets WHERE name = ?", [.text(name)]).isEmpty else { throw S3Error.noSuchBucket(name) }
                guard try db.query("SELECT 1 FROM s3_objects WHERE bucket = ? LIMIT 1", [.text(name)]).isEmpty else { throw S3Error.bucketNotEmpty(name) }
                let parts = try db.query("SELECT p.blob FROM s3_parts p JOIN s3_uploads u ON u.id = p.upload WHERE u.bucket = ?", [.text(name)]).compactMap { $0[0].text }
                try db.run("DELETE FROM s3_parts WHERE upload IN (SELECT id FROM s3_uploads WHERE bucket = ?)", [.text(name)])
                try db.run("DELETE FROM s3_uploads WHERE bucket = ?", [.text(name)])
                try db.run("DELETE FROM s3_buckets WHERE name = ?", [.text(name)])
                knownBuckets.withLock { _ = $0.removeValue(forKey: name) }
                return parts
            }
        } catch let error as S3Error {
            throw error
        } catch {
            throw S3Error.internalError("\(error)")
        }
        retire(parts)
    }

    func cors(of bucket: String) throws -> String? {
        try database.read { db in try db.query("SELECT cors FROM s3_buckets WHERE name = ?", [.text(bucket)]).first?[0].text }
    }

    func setCORS(_ xml: String?, of bucket: String) throws {
        _ = try database.write { db in try db.run("UPDATE s3_buckets SET cors = ? WHERE name = ?", [xml.map(SQLiteValue.text) ?? .null, .text(bucket)]) }
    }

    // MARK: Objects

    func object(bucket: String, key: String) throws -> S3ObjectRecord? {
        try database.read { db in
            try db.query("SELECT key, blob, size, etag, modified_ms, metadata FROM s3_objects WHERE bucket = ? AND key = ?", [.text(bucket), .text(key)])
                .first.map(Self.objectRecord)
        }
    }

    /// An object's record and, with `withInlineBody`, its bytes when they are kept in SQLite: one
    /// query for both (a GET's whole read).
    func object(bucket: String, key: String, withInlineBody: Bool) throws -> (S3ObjectRecord, [UInt8]?)? {
        guard withInlineBody else { return try object(bucket: bucket, key: key).map { ($0, nil) } }
        return try database.read { db in
            let sql = "SELECT key, blob, size, etag, modified_ms, metadata, body FROM s3_objects WHERE bucket = ? AND key = ?"
            return try db.query(sql, [.text(bucket), .text(key)]).first.map { row in
                guard case .blob(let bytes) = row[6] else { return (Self.objectRecord(row), nil) }
                return (Self.objectRecord(row), bytes)
            }
        }
    }

    /// Makes `record` the object at its key, replacing any object there; the replaced blob is retired.
    /// With `requireAbsent`, an existing object makes it fail with `PreconditionFailed` (`If-None-Match: *`).
    /// `inlineBody` holds the bytes of an inline blob, stored in the same transaction.
    func putObject(bucket: String, _ record: S3ObjectRecord, requireAbsent: Bool = false, inlineBody: [UInt8]? = nil) throws {
        let metadata = record.metadata.storedJSON
        let old = try database.write { db -> String? in
            let old = try db.query("SELECT blob FROM s3_objects WHERE bucket = ? AND key = ?", [.text(bucket), .text(record.key)]).first?[0].text
            if requireAbsent, old != nil { throw S3Error.preconditionFailed("If-None-Match") }
            try db.run(
                "INSERT OR REPLACE INTO s3_objects(bucket, key, blob, size, etag, modified_ms, metadata, body) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    .text(bucket), .text(record.key), .text(record.blob), .integer(record.size), .text(record.etag), .integer(record.modifiedMilliseconds),
                    .text(metadata), inlineBody.map(SQLiteValue.blob) ?? .null,
                ]
            )
            return old
        }
        if let old { retire([old]) }
    }

    /// Deletes an object; `false` when there was none.
    @discardableResult
    func deleteObject(bucket: String, key: String) throws -> Bool {
        let old = try database.write { db -> String? in
            let old = try db.query("SELECT blob FROM s3_objects WHERE bucket = ? AND key = ?", [.text(bucket), .text(key)]).first?[0].text
            if old != nil { try db.run("DELETE FROM s3_objects WHERE bucket = ? AND key = ?", [.text(bucket), .text(key)]) }
            return old
        }
        guard let old else { return false }
        retire([old])
        return true
    }

    /// Up to `limit` objects after `after` (exclusive) whose keys start with `prefix`, in key order.
    func objects(bucket: String, prefix: String, after: String?, limit: Int) throws -> [S3ObjectRecord] {
        var sql = "SELECT key, blob, size, etag, modified_ms, metadata FROM s3_objects WHERE bucket = ?"
        var parameters: [SQLiteValue] = [.text(bucket)]
        if !prefix.isEmpty {
            // Byte-wise prefix match: substr and length count characters, so compare the UTF-8 bytes.
            sql += " AND key >= ? AND CAST(substr(CAST(key AS BLOB), 1, ?) AS BLOB) = CAST(? AS BLOB)"
            parameters += [.text(prefix), .integer(Int64(prefix.utf8.count)), .text(prefix)]
        }
        if let after {
            sql += " AND key > ?"
            parameters.append(.text(after))
        }
        sql += " ORDER BY key LIMIT ?"
        parameters.append(.integer(Int64(limit)))
        return try database.read { db in try db.query(sql, parameters).map(Self.objectRecord) }
    }

    private static func objectRecord(_ row: [SQLiteValue]) -> S3ObjectRecord {
        S3ObjectRecord(
            key: row[0].text ?? "", blob: row[1].text ?? "", size: row[2].integer ?? 0, etag: row[3].text ?? "", modifiedMilliseconds: row[4].integer ?? 0,
            metadata: S3ObjectMetadata(storedJSON: row[5].text ?? "{}") ?? S3ObjectMetadata()
        )
    }

    // MARK: Multipart uploads

    func createUpload(bucket: String, key: String, metadata: S3ObjectMetadata) throws -> String {
        let id = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "") + String(Self.nowMilliseconds(), radix: 36)
        let encoded = metadata.storedJSON
        _ = try database.write { db in
            try db.run(
                "INSERT INTO s3_uploads(id, bucket, key, created_ms, metadata) VALUES(?, ?, ?, ?, ?)",
                [.text(id), .text(bucket), .text(key), .integer(Self.nowMilliseconds()), .text(encoded)]
            )
        }
        return id
    }

    /// The upload's key and metadata, when it exists in `bucket`.
    func upload(_ id: String, bucket: String) throws -> (key: String, createdMilliseconds: Int64, metadata: S3ObjectMetadata)? {
        try database.read { db in
            try db.query("SELECT key, created_ms, metadata FROM s3_uploads WHERE id = ? AND bucket = ?", [.text(id), .text(bucket)]).first.map { row in
                (row[0].text ?? "", row[1].integer ?? 0, S3ObjectMetadata(storedJSON: row[2].text ?? "{}") ?? S3ObjectMetadata())
            }
        }
    }

    func uploads(bucket: String) throws -> [(id: String, key: String, createdMilliseconds: Int64)] {
        try database.read { db in
            try db.query("SELECT id, key, created_ms FROM s3_uploads WHERE bucket = ? ORDER BY key, created_ms", [.text(bucket)]).map {
                ($0[0].text ?? "", $0[1].text ?? "", $0[2].integer ?? 0)
            }
        }
    }

    /// Records a part (replacing an earlier part with its number); `false` when the upload is gone.
    func putPart(upload: String, _ part: S3PartRecord) throws -> Bool {
        let result = try database.write { db -> (stored: Bool, old: String?) in
            guard try !db.query("SELECT 1 FROM s3_uploads WHERE id = ?", [.text(upload)]).isEmpty else { return (false, nil) }
            let old = try db.query("SELECT blob FROM s3_parts WHERE upload = ? AND number = ?", [.text(upload), .integer(Int64(part.number))]).first?[0].text
            try db.run(
                "INSERT OR REPLACE INTO s3_parts(upload, number, blob, size, etag, md5, modified_ms) VALUES(?, ?, ?, ?, ?, ?, ?)",
                [.text(upload), .integer(Int64(part.number)), .text(part.blob), .integer(part.size), .text(part.etag), .blob(part.md5), .integer(part.modifiedMilliseconds)]
            )
            return (true, old)
        }
        if let old = result.old { retire([old]) }
        return result.stored
    }

    func parts(upload: String) throws -> [S3PartRecord] {
        try database.read { db in
            try db.query("SELECT number, blob, size, etag, md5, modified_ms FROM s3_parts WHERE upload = ? ORDER BY number", [.text(upload)]).map { row in
                var md5: [UInt8] = []
                if case .blob(let bytes) = row[4] { md5 = bytes }
                return S3PartRecord(number: Int(row[0].integer ?? 0), blob: row[1].text ?? "", size: row[2].integer ?? 0, etag: row[3].text ?? "", md5: md5, modifiedMilliseconds: row[5].integer ?? 0)
            }
        }
    }

    /// Ends an upload: with `object`, that object replaces its key in the same transaction.
    /// `false` when the upload was already gone.
    func finishUpload(_ id: String, bucket: String, object: S3ObjectRecord?) throws -> Bool {
        let metadata = object.map { $0.metadata.storedJSON }
        let result = try database.write { db -> (found: Bool, retired: [String]) in
            guard try !db.query("SELECT 1 FROM s3_uploads WHERE id = ? AND bucket = ?", [.text(id), .text(bucket)]).isEmpty else { return (false, []) }
            var retired = try db.query("SELECT blob FROM s3_parts WHERE upload = ?", [.text(id)]).compactMap { $0[0].text }
            try db.run("DELETE FROM s3_parts WHERE upload = ?", [.text(id)])
            try db.run("DELETE FROM s3_uploads WHERE id = ?", [.text(id)])
            if let object, let metadata {
                if let old = try db.query("SELECT blob FROM s3_objects WHERE bucket = ? AND key = ?", [.text(bucket), .text(object.key)]).first?[0].text {
                    retired.append(old)
                }
                try db.run(
                    "INSERT OR REPLACE INTO s3_objects(bucket, key, blob, size, etag, modified_ms, metadata) VALUES(?, ?, ?, ?, ?, ?, ?)",
                    [.text(bucket), .text(object.key), .text(object.blob), .integer(object.size), .text(object.etag), .integer(object.modifiedMilliseconds), .text(metadata)]
                )
            }
            return (true, retired)
        }
        retire(result.retired)
        return result.found
    }

    static func nowMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
