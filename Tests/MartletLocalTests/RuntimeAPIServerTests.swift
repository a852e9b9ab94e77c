import FoundationEssentials
import MartletLocal
import MartletRuntime
import MartletTestSupport
import NIOCore
import Testing

@Suite("Local Runtime API server: Lambda's protocol rules")
struct RuntimeAPIServerTests {
    @Test("Request ids are distinct version-4 UUIDs in lowercase, as Lambda's are")
    func requestIDs() {
        let ids = (0..<2000).map { _ in RequestID.make() }
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(200) {
            let groups = id.split(separator: "-", omittingEmptySubsequences: false)
            #expect(groups.map(\.count) == [8, 4, 4, 4, 12])
            #expect(id.allSatisfy { "0123456789abcdef-".contains($0) })
            #expect(groups[2].first == "4")
            #expect("89ab".contains(groups[3].first!))
        }
    }

    @Test("next delivers the event with Lambda's headers; the response completes the invocation with 202")
    func nextAndResponse() async throws {
        let environment = RuntimeEnvironment(functionName: "fn", region: "eu-west-1", accountID: "123456789012")
        try await withRuntimeAPIServer(environment) { address in
            try await HTTPRuntimeAPIClient.withConnection(to: address) { client in
                async let outcome = environment.invoke(.init(
                    event: ByteBuffer(string: #"{"a":1}"#), timeout: .seconds(5), traceID: "Root=1-abc",
                    clientContext: #"{"custom":{}}"#, cognitoIdentity: #"{"cognitoIdentityId":"x"}"#
                ))
                let invocation = try await client.nextInvocation()
                let metadata = invocation.metadata
                #expect(invocation.event.text == #"{"a":1}"#)
                #expect(metadata.invokedFunctionARN == "arn:aws:lambda:eu-west-1:123456789012:function:fn")
                #expect(metadata.traceID == "Root=1-abc")
                #expect(metadata.clientContext == #"{"custom":{}}"#)
                #expect(metadata.cognitoIdentity == #"{"cognitoIdentityId":"x"}"#)
                let remaining = metadata.deadlineEpochMilliseconds - WallClock.nowMilliseconds
                #expect((4000...5000).contains(remaining))
                try await client.reportResponse(ByteBuffer(string: "done"), for: metadata.requestID)
                #expect(await outcome.body.text == "done")
            }
        }
    }

    @Test("An unknown request id is 400 InvalidRequestID; a second answer is 403 InvalidStateTransition")
    func unknownAndAnswered() async throws {
        let environment = RuntimeEnvironment(functionName: "fn")
        try await withRuntimeAPIServer(environment) { address in
            try await HTTPRuntimeAPIClient.withConnection(to: address) { client in
                let unknown = await #expect(throws: RuntimeAPIError.self) {
                    try await client.reportResponse(ByteBuffer(string: "x"), for: "not-a-request")
                }
                #expect(unknown?.status == 400)
                #expect(unknown?.description.contains(#""errorType":"InvalidRequestID""#) == true)

                async let outcome = environment.invoke(.json("{}"))
                let invocation = try await client.nextInvocation()
                try await client.reportResponse(ByteBuffer(string: "1"), for: invocation.metadata.requestID)
                let twice = await #expect(throws: RuntimeAPIError.self) {
                    try await client.reportError(FunctionError(errorType: "E", errorMessage: "m"), for: invocation.metadata.requestID)
                }
                #expect(twice?.status == 403)
                #expect(twice?.description.contains("InvalidStateTransition") == true)
                #expect(await outcome.body.text == "1")
            }
        }
    }

    @Test("next while an invocation is outstanding is refused with 403")
    func nextWhileBusy() async throws {
        let environment = RuntimeEnvironment(functionName: "fn")
        try await withRuntimeAPIServer(environment) { address in
            try await HTTPRuntimeAPIClient.withConnection(to: address) { client in
                async let outcome = environment.invoke(.json("{}"))
                let invocation = try await client.nextInvocation()
                let busy = await #expect(throws: RuntimeAPIError.self) { try await client.nextInvocation() }
                #expect(busy?.status == 403)
                try await client.reportResponse(ByteBuffer(string: "ok"), for: invocation.metadata.requestID)
                _ = await outcome
            }
        }
    }

    @Test("A response over 6,291,556 bytes gets 413 and the caller gets Function.ResponseSizeTooLarge")
    func responseTooLarge() async throws {
        let environment = RuntimeEnvironment(functionName: "fn")
        try await withRuntimeAPIServer(environment) { address in
            try await HTTPRuntimeAPIClient.withConnection(to: address) { client in
                async let outcome = environment.invoke(.json("{}"))
                let invocation = try await client.nextInvocation()
                let body = ByteBuffer(repeating: 0x61, count: LambdaLimits.maxResponseSize + 1)
                let refused = await #expect(throws: RuntimeAPIError.self) {
                    try await client.reportResponse(body, for: invocation.metadata.requestID)
                }
                #expect(refused?.status == 413)
                #expect(refused?.description.contains("Exceeded maximum allowed payload size (6291556 bytes).") == true)
                let result = await outcome
                #expect(result.errorType == "Function.ResponseSizeTooLarge")
                // Exactly at the limit is accepted.
                async let second = environment.invoke(.json("{}"))
                let next = try await client.nextInvocation()
                try await client.reportResponse(ByteBuffer(repeating: 0x61, count: LambdaLimits.maxResponseSize), for: next.metadata.requestID)
                #expect(await second.body.readableBytes == LambdaLimits.maxResponseSize)
            }
        }
    }

    @Test("An error without a body is built from the error-type header")
    func errorFromHeader() async throws {
        let environment = RuntimeEnvironment(functionName: "fn")
        try await withRuntimeAPIServer(environment) { address in
            try await HTTPRuntimeAPIClient.withConnection(to: address) { client in
                async let outcome = environment.invoke(.json("{}"))
                let invocation = try await client.nextInvocation()
                try await client.reportError(FunctionError(errorType: "Runtime.Crash", errorMessage: "bad"), for: invocation.metadata.requestID)
                let result = await outcome
                #expect(result.errorType == "Runtime.Crash")
                #expect(result.body.text == #"{"errorMessage":"bad","errorType":"Runtime.Crash"}"#)
            }
        }
    }

    @Test("A timed-out invocation cannot be answered afterwards")
    func completeThenAnswer() async throws {
        let environment = RuntimeEnvironment(functionName: "fn")
        try await withRuntimeAPIServer(environment) { address in
            try await HTTPRuntimeAPIClient.withConnection(to: address) { client in
                async let outcome = environment.invoke(.json("{}"))
                let invocation = try await client.nextInvocation()
                let id = invocation.metadata.requestID
                #expect(environment.complete(id, with: .timedOut(requestID: id, after: .seconds(3))))
                #expect(!environment.complete(id, with: .timedOut(requestID: id, after: .seconds(3))))
                let late = await #expect(throws: RuntimeAPIError.self) { try await client.reportResponse(ByteBuffer(), for: id) }
                #expect(late?.status == 403)
                #expect(await outcome.errorType == "Sandbox.Timedout")
                #expect(await outcome.body.text.contains("Task timed out after 3.00 seconds"))
            }
        }
    }
}
