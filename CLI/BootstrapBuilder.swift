import ArgumentParser
import Foundation

/// Finds one of the package's executables (`bootstrap` by default) and rebuilds it when a source
/// it is made from is newer than the binary.
struct BootstrapBuilder {
    let packageRoot: String
    let configuration: String
    let product: String
    /// The folders whose sources the product is built from.
    let sourceFolders: [String]

    static let sources = [
        "bootstrap": ["Runtime", "Functions", "Jobs", "AWS"],
        "martlet-worker": ["Runtime", "Jobs", "AWS", "Worker"],
    ]

    init(configuration: String, product: String = "bootstrap") throws {
        self.product = product
        self.sourceFolders = Self.sources[product] ?? []
        var folder = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        while !FileManager.default.fileExists(atPath: folder.appendingPathComponent("Package.swift").path) {
            let parent = folder.deletingLastPathComponent()
            guard parent.path != folder.path else {
                throw ValidationError("not inside a Swift package: run from the project folder, or pass --command")
            }
            folder = parent
        }
        self.packageRoot = folder.path
        self.configuration = configuration
    }

    var executable: String { "\(packageRoot)/.build/\(configuration)/\(product)" }

    /// Builds when the binary is missing or older than any source it is made from.
    func buildIfStale() throws {
        guard isStale else { return }
        FileHandle.standardError.write(Data("martlet: building \(product) (\(configuration))…\n".utf8))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["swift", "build", "--product", product, "-c", configuration]
        process.currentDirectoryURL = URL(fileURLWithPath: packageRoot)
        process.standardOutput = FileHandle.standardError
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ValidationError("building \(product) failed (swift build exited \(process.terminationStatus))")
        }
    }

    var isStale: Bool {
        let files = FileManager.default
        guard let built = try? files.attributesOfItem(atPath: executable)[.modificationDate] as? Date else { return true }
        var sources = ["\(packageRoot)/Package.swift"]
        for folder in sourceFolders {
            let root = "\(packageRoot)/\(folder)"
            for case let relative as String in files.enumerator(atPath: root) ?? NSEnumerator() where relative.hasSuffix(".swift") {
                sources.append("\(root)/\(relative)")
            }
        }
        return sources.contains { path in
            ((try? files.attributesOfItem(atPath: path)[.modificationDate]) as? Date).map { $0 > built } ?? false
        }
    }
}
