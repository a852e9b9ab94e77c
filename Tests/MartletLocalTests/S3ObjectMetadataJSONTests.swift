import Foundation
import Testing

@testable import MartletLocal

@Suite("S3 object metadata as stored")
struct S3ObjectMetadataJSONTests {
    static let samples: [S3ObjectMetadata] = [
        S3ObjectMetadata(),
        S3ObjectMetadata(contentType: "binary/octet-stream"),
        S3ObjectMetadata(
            contentType: "audio/wav", contentEncoding: "gzip", contentDisposition: "attachment; filename=\"clip \\\"1\\\".wav\"",
            contentLanguage: "en", cacheControl: "max-age=60", expires: "Thu, 01 Dec 1994 16:00:00 GMT",
            user: [["job-id", "0f3c"], ["note", "héllo\n\t\u{1}ünïcode 🎵"], ["empty", ""]],
            checksumAlgorithm: "CRC32", checksumValue: "AAAAAA==", partsCount: 12
        ),
    ]

    @Test("What the byte codec writes, Codable reads back the same, and the other way round")
    func agreesWithCodable() throws {
        for metadata in Self.samples {
            let written = metadata.storedJSON
            #expect(try JSONDecoder().decode(S3ObjectMetadata.self, from: Data(written.utf8)) == metadata)
            let codable = String(decoding: try JSONEncoder().encode(metadata), as: UTF8.self)
            #expect(S3ObjectMetadata(storedJSON: codable) == metadata)
            #expect(S3ObjectMetadata(storedJSON: written) == metadata)
        }
    }

    @Test("Pretty or reordered JSON still reads; text that is not metadata is refused")
    func tolerantButStrict() throws {
        let pretty = String(decoding: try { let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys]; return try e.encode(Self.samples[2]) }(), as: UTF8.self)
        #expect(S3ObjectMetadata(storedJSON: pretty) == Self.samples[2])
        #expect(S3ObjectMetadata(storedJSON: #"{"user":[],"contentType":null}"#) == S3ObjectMetadata())
        #expect(S3ObjectMetadata(storedJSON: "not json") == nil)
        #expect(S3ObjectMetadata(storedJSON: #"{"user":[["a","b"]"#) == nil)
    }
}
