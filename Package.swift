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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        // The Lambda runtime every function ships in: NIO + swift-log + FoundationEssentials only.
        .target(
            name: "MartletRuntime",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Runtime",
            swiftSettings: strictness
        ),
        // The AWS wire layer: SigV4, S3 presigning and transfers, SQS, DynamoDB, @connections. Independent of the runtime.
        .target(
            name: "MartletAWS",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "_NIOFileSystem", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "AWS",
            swiftSettings: strictness
        ),
        // The application's handlers, and the single `bootstrap` that selects one by `_HANDLER`.
        .target(
            name: "Functions",
            dependencies: ["MartletRuntime", .product(name: "NIOCore", package: "swift-nio")],
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
        // SQLite from the system, for the emulator's durable state.
        .systemLibrary(name: "CSQLite", path: "Local/CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // The local emulator: Runtime API, Invoke API, function processes, the local AWS endpoint.
        .target(
            name: "MartletLocal",
            dependencies: [
                "MartletRuntime",
                "MartletAWS",
                "CSQLite",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "_NIOFileSystem", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Local",
            exclude: ["CSQLite"],
            swiftSettings: strictness
        ),
        .executableTarget(
            name: "martlet",
            dependencies: [
                "MartletLocal",
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
            name: "presign-bench",
            dependencies: ["MartletAWS"],
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
            dependencies: ["MartletAWS", "MartletTestSupport", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/MartletAWSTests",
            resources: [.copy("Vectors")],
            swiftSettings: strictness
        ),
        .testTarget(
            name: "MartletLocalTests",
            dependencies: [
                "MartletLocal", "MartletRuntime", "MartletAWS", "MartletTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/MartletLocalTests",
            swiftSettings: strictness
        ),
    ]
)
