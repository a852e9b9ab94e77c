import ArgumentParser
import Foundation
import Logging
import MartletLocal

/// `martlet endpoint`: the local AWS endpoint (S3, SQS, DynamoDB, Lambda invoke) on one port.
struct EndpointCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "endpoint",
        abstract: "Serve the local AWS endpoint: S3, SQS and DynamoDB, durable on disk, with SigV4 checked.",
        discussion: """
            boto3, the AWS CLI and MartletAWS work against it unchanged: set AWS_ENDPOINT_URL=http://127.0.0.1:4566 \
            and the credentials below (test / test by default).
            """
    )

    @Option(help: "The address to listen on.") var host: String = "127.0.0.1"
    @Option(help: "The port (0 picks a free one).") var port: Int = 4566
    @Option(help: "The data folder: state in FOLDER/state.sqlite, object bytes under FOLDER/s3.") var data: String = ".martlet"
    @Flag(help: "Keep all state in memory (nothing is written to disk).") var inMemory = false
    @Option(help: "The access key id requests must be signed with.") var accessKey: String = "test"
    @Option(help: "The secret access key.") var secretKey: String = "test"
    @Option(help: "A session token every request must carry.") var sessionToken: String?
    @Option(help: "The region of queue URLs and ARNs.") var region: String = "us-east-1"

    func run() async throws {
        let path: String?
        let objectsFolder: String
        if inMemory {
            path = nil
            // Object bytes still go to files, in a folder removed on exit.
            objectsFolder = NSTemporaryDirectory() + "martlet-s3-\(UUID().uuidString)"
        } else {
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            path = (data as NSString).appendingPathComponent("state.sqlite")
            objectsFolder = (data as NSString).appendingPathComponent("s3")
        }
        defer { if inMemory { try? FileManager.default.removeItem(atPath: objectsFolder) } }
        let database = try SQLiteDatabase(path: path)
        let endpoint = try LocalEndpoint(
            database: database, objectsFolder: objectsFolder, credentials: LocalCredentials(secrets: [accessKey: secretKey], sessionToken: sessionToken),
            region: region, logger: .cli
        )
        let (host, port) = (host, port)
        try await runCancellingOnSignals {
            try await endpoint.run(host: host, port: port) { address in
                printError("martlet: AWS endpoint at http://\(address.ipAddress ?? host):\(address.port ?? port) (\(path ?? "in memory"))")
            }
        }
    }
}
