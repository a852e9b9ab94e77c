#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The models a worker offers, by name, in the order they were given.
///
/// ```swift
/// let catalog = try ModelCatalog.fromEnvironment(ProcessInfo.processInfo.environment)
/// guard let model = catalog.model(named: job.model) else { ... }
/// ```
struct ModelCatalog: Sendable {
    private let models: [String: any JobModel]
    /// The models' names, in the order they were given.
    let names: [String]

    /// A catalog of `models`; a later model with the same name as an earlier one replaces it.
    init(_ models: [any JobModel]) {
        var byName: [String: any JobModel] = [:]
        var names: [String] = []
        for model in models {
            if byName.updateValue(model, forKey: model.name) == nil { names.append(model.name) }
        }
        self.models = byName
        self.names = names
    }

    func model(named name: String) -> (any JobModel)? { models[name] }

    /// The demo and noop models, plus a command model when `MODEL_COMMAND` is set.
    ///
    /// - `MODEL_COMMAND`: the executable and its arguments, either split on spaces (no shell quoting) or a JSON
    ///   array of strings, e.g. `python3 /opt/model.py` or `["python3", "/opt/my model.py"]`.
    /// - `MODEL_COMMAND_NAME`: the name jobs use for it (default `command`).
    /// - `MODEL_COMMAND_TIMEOUT_SECONDS`: kill a job's command after this many seconds (default: no limit).
    /// - Throws: `ConfigurationError` when a variable cannot be used.
    static func fromEnvironment(_ environment: [String: String]) throws -> ModelCatalog {
        var models: [any JobModel] = [DemoAudioModel(), NoopModel()]
        if let line = environment["MODEL_COMMAND"], !line.allSatisfy(\.isWhitespace) {
            let words = try commandWords(line)
            let name = environment["MODEL_COMMAND_NAME"].flatMap { $0.isEmpty ? nil : $0 } ?? "command"
            guard !models.contains(where: { $0.name == name }) else {
                throw ConfigurationError("MODEL_COMMAND_NAME must not be \"\(name)\", a built-in model's name")
            }
            var timeout: Duration?
            if let text = environment["MODEL_COMMAND_TIMEOUT_SECONDS"], !text.isEmpty {
                guard let seconds = Double(text), seconds > 0, seconds.isFinite else {
                    throw ConfigurationError(
                        "MODEL_COMMAND_TIMEOUT_SECONDS must be a positive number (got \"\(text)\")"
                    )
                }
                timeout = .milliseconds(Int64((seconds * 1000).rounded()))
            }
            models.append(
                CommandModel(name: name, executable: words[0], arguments: Array(words.dropFirst()), timeout: timeout)
            )
        }
        return ModelCatalog(models)
    }

    private static func commandWords(_ line: String) throws -> [String] {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        let words: [String]
        if trimmed.hasPrefix("[") {
            guard let array = try? JSONDecoder().decode([String].self, from: Data(trimmed.utf8)) else {
                throw ConfigurationError("MODEL_COMMAND looks like JSON but is not an array of strings")
            }
            words = array
        } else {
            words = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        }
        guard let first = words.first, !first.isEmpty else {
            throw ConfigurationError("MODEL_COMMAND must name an executable")
        }
        return words
    }

    /// A worker setting that cannot be used; the worker should not start.
    struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
        var message: String

        init(_ message: String) { self.message = message }

        var description: String { message }
    }
}
