import FoundationEssentials
import MartletLocal
import MartletRuntime
import MartletTestSupport
import NIOCore
import Testing

private struct MissingSecret: Error, CustomStringConvertible {
    var description: String { "JOB_SECRET is not configured" }
}

/// `Runtime.run` allows one run per process, so these run one after another.
@Suite("Runtime initialisation", .serialized)
struct RuntimeInitTests {
    private func registry() -> HandlerRegistry {
        var registry = HandlerRegistry()
        registry.register("echo") { ClosureByteHandler { event, _ in event } }
        registry.register("broken") { () async throws -> ClosureByteHandler in throw MissingSecret() }
        return registry
    }

    private func runtime(handler: String, address: String) -> RuntimeConfiguration {
        RuntimeConfiguration(runtimeAPI: address, handler: handler)
    }

    @Test("An unknown _HANDLER is an init error naming the known handlers, and the process status is 1")
    func unknownHandler() async throws {
        let environment = RuntimeEnvironment(functionName: "test")
        let (status, readiness) = try await withRuntimeAPIServer(environment) { address in
            let status = await Runtime.run(registry(), configuration: runtime(handler: "nope", address: address), logSink: { _ in })
            return (status, await environment.waitUntilReady())
        }
        #expect(status == 1)
        guard case .initError(let body, let type) = readiness else {
            Issue.record("expected an init error, got \(readiness)")
            return
        }
        #expect(type == "Runtime.NoSuchHandler")
        let error = try JSONDecoder().decode(FunctionError.self, from: Data(body.readableBytesView))
        #expect(error.errorMessage == "Unknown handler 'nope' (from _HANDLER). Known handlers: broken, echo.")
    }

    @Test("A throwing initialiser is reported as Runtime.InitError and later invocations get it")
    func throwingInitialiser() async throws {
        let environment = RuntimeEnvironment(functionName: "test")
        let (status, outcome) = try await withRuntimeAPIServer(environment) { address in
            let status = await Runtime.run(registry(), configuration: runtime(handler: "broken", address: address), logSink: { _ in })
            return (status, await environment.invoke(.json("{}")))
        }
        #expect(status == 1)
        guard case .initError(let body, "Runtime.InitError") = outcome else {
            Issue.record("expected Runtime.InitError, got \(outcome)")
            return
        }
        #expect(body.text.contains("MissingSecret: JOB_SECRET is not configured"))
    }

    @Test("A Runtime API that cannot be reached ends the runtime with status 1")
    func unreachableRuntimeAPI() async throws {
        let status = await Runtime.run(registry(), configuration: runtime(handler: "echo", address: "127.0.0.1:1"), logSink: { _ in })
        #expect(status == 1)
    }

    @Test("A missing or malformed AWS_LAMBDA_RUNTIME_API ends the runtime with status 1")
    func malformedAddress() async throws {
        #expect(await Runtime.run(registry(), configuration: runtime(handler: "echo", address: "no-port"), logSink: { _ in }) == 1)
        #expect(await Runtime.run(registry(), configuration: RuntimeConfiguration(runtimeAPI: nil, handler: "echo"), logSink: { _ in }) == 1)
    }

    @Test("Runtime.run serves invocations with the named handler")
    func servesNamedHandler() async throws {
        let environment = RuntimeEnvironment(functionName: "test")
        let outcome = try await withRuntimeAPIServer(environment) { address in
            await withTaskGroup(of: Void.self) { group in
                group.addTask { _ = await Runtime.run(self.registry(), configuration: self.runtime(handler: "echo", address: address), logSink: { _ in }) }
                defer { group.cancelAll() }
                return await environment.invoke(.json(#"[1,2,3]"#))
            }
        }
        #expect(outcome.body.text == "[1,2,3]")
    }
}
