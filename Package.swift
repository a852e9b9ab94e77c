// swift-tools-version:6.1
import PackageDescription

let strictness: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "Martlet",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "MartletRuntime", targets: ["MartletRuntime"]),
        .library(name: "MartletLocal", targets: ["MartletLocal"]),
        .library(name: "MartletAWS", targets: ["MartletAWS"]),
        .executable(name: "bootstrap", targets: ["bootstrap"]),
        .executable(name: "martlet", targets: ["martlet"]),
        .executable(name: "martlet-worker", targets: ["martlet-worker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        // TLS for the AWS transport and `martlet client`'s wss:// connections.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.27.0"),
    ],
    targets: [
        // JSON read and written byte by byte, for the codecs on hot paths (no dependencies).
        .target(name: "MartletJSON", path: "JSON", swiftSettings: strictness),
        // The Lambda runtime every function ships in: NIO + swift-log + FoundationEssentials only.
        .target(
            name: "MartletRuntime",
            dependencies: [
                "MartletJSON",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            path: "Runtime",
            swiftSettings: strictness
        ),
        // The AWS wire layer: SigV4 (with its own SHA-256/HMAC/MD5), S3 presigning and transfers, SQS, DynamoDB,
        // @connections, over its own HTTP/1.1 transport: no second BoringSSL, no HTTP/2 in the Lambda zip.
        .target(
            name: "MartletAWS",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                "CSHA256", "MartletJSON",
            ],
            path: "AWS",
            exclude: ["Digest/CSHA256"],
            swiftSettings: strictness
        ),
        // SHA-256 on the CPU's SHA instructions where it has them (SigV4 hashes on every call).
        .target(name: "CSHA256", path: "AWS/Digest/CSHA256"),
        // The jobs domain shared by the functions and the GPU workers: records and their state machine,
        // client keys, connections, the queue message, the operations clients call.
        .target(
            name: "MartletJobs",
            dependencies: [
                "MartletRuntime", "MartletAWS", "MartletJSON",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            path: "Jobs",
            swiftSettings: strictness
        ),
        // The application's handlers, and the single `bootstrap` that selects one by `_HANDLER`.
        .target(
            name: "Functions",
            dependencies: ["MartletRuntime", "MartletJobs", .product(name: "NIOCore", package: "swift-nio")],
            path: "Functions/Handlers",
            swiftSettings: strictness
        ),
        // Keeps the bootstrap startable on provided.al2023 (glibc 2.34) when built on a newer glibc.
        .target(name: "GlibcCompat", path: "Functions/GlibcCompat"),
        .executableTarget(
            name: "bootstrap",
            dependencies: ["Functions", "MartletRuntime", "GlibcCompat"],
            path: "Functions/Bootstrap",
            swiftSettings: strictness
        ),
        // The GPU container worker: the queue loop with heartbeats and graceful stops, the health
        // endpoint, and the models it runs (a built-in demo, or any command).
        .target(
            name: "MartletWorker",
            dependencies: [
                "MartletJobs", "MartletAWS", "MartletRuntime", "MartletJSON",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Worker",
            exclude: ["Main", "Dockerfile", "Examples"],
            swiftSettings: strictness
        ),
        .executableTarget(name: "martlet-worker", dependencies: ["MartletWorker"], path: "Worker/Main", swiftSettings: strictness),
        // SQLite from the system, for the emulator's durable state.
        .systemLibrary(name: "CSQLite", path: "Local/CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // The local emulator: Runtime API, Invoke API, function processes, the local AWS endpoint.
        .target(
            name: "MartletLocal",
            dependencies: [
                "MartletRuntime",
                "MartletAWS",
                "MartletJSON",
                "CSQLite",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "_NIOFileSystem", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Local",
            exclude: ["CSQLite"],
            swiftSettings: strictness
        ),
        // A client of the application, as its users run it: WebSocket (ws/wss), uploads, progress, downloads.
        .target(
            name: "MartletClient",
            dependencies: [
                "MartletJobs", "MartletRuntime",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Client",
            swiftSettings: strictness
        ),
        .executableTarget(
            name: "martlet",
            dependencies: [
                "MartletLocal", "Functions", "MartletClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "CLI",
            swiftSettings: strictness
        ),
        // Benchmarks live apart from tests: `scripts/bench` runs them in release mode against peers.
        .executableTarget(
            name: "runtime-bench",
            dependencies: ["MartletLocal", "MartletRuntime", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/RuntimeBenchmark",
            exclude: ["floor.c"],
            swiftSettings: strictness
        ),
        .executableTarget(
            name: "jobs-bench",
            dependencies: ["MartletClient"],
            path: "Benchmarks/JobsBenchmark",
            swiftSettings: strictness
        ),
        .executableTarget(
            name: "presign-bench",
            dependencies: [
                "MartletAWS", "MartletLocal", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Benchmarks/PresignBenchmark",
            swiftSettings: strictness
        ),
        // Helpers shared by the test targets: in-process servers on port 0, built products, JSON comparison.
        .target(
            name: "MartletTestSupport",
            dependencies: ["MartletRuntime", "MartletLocal", .product(name: "Logging", package: "swift-log")],
            path: "TestSupport",
            swiftSettings: strictness
        ),
        .testTarget(
            name: "MartletRuntimeTests",
            dependencies: ["MartletRuntime", "MartletLocal", "MartletTestSupport", "Functions"],
            path: "Tests/MartletRuntimeTests",
            resources: [.copy("Fixtures")],
            swiftSettings: strictness
        ),
        .testTarget(
            name: "MartletAWSTests",
            dependencies: [
                "MartletAWS", "MartletTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/MartletAWSTests",
            resources: [.copy("Vectors")],
            swiftSettings: strictness
        ),
        .testTarget(
            name: "MartletJobsTests",
            dependencies: [
                "MartletJobs", "MartletWorker", "Functions", "MartletLocal", "MartletAWS", "MartletRuntime", "MartletTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            path: "Tests/MartletJobsTests",
            swiftSettings: strictness
        ),
        .testTarget(
            name: "MartletLocalTests",
            dependencies: [
                "MartletLocal", "MartletClient", "MartletJobs", "MartletRuntime", "MartletAWS", "MartletTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            path: "Tests/MartletLocalTests",
            swiftSettings: strictness
        ),
    ]
)
