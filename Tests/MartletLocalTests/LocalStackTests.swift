import AsyncHTTPClient
import Foundation
import Logging
import MartletLocal
import MartletTestSupport
import NIOCore
import Testing

/// `martlet local` in this process on ephemeral ports, with the real `bootstrap`, from a small template.
@Suite("martlet local: template, HTTP API and function processes")
struct LocalStackTests {
    static let template = """
        AWSTemplateFormatVersion: "2010-09-09"
        Transform: AWS::Serverless-2016-10-31
        Parameters:
          Greeting:
            Type: String
            Default: hello
        Globals:
          Function:
            Runtime: provided.al2023
            Timeout: 3
            Environment:
              Variables:
                QUEUE_URL: !Ref Jobs
                QUEUE_ARN: !GetAtt Jobs.Arn
                GREETING: !Sub "${Greeting} from ${AWS::Region}"
        Resources:
          Jobs:
            Type: AWS::SQS::Queue
            Properties:
              RedrivePolicy:
                deadLetterTargetArn: !GetAtt Dead.Arn
                maxReceiveCount: 2
          Dead:
            Type: AWS::SQS::Queue
          Echo:
            Type: AWS::Serverless::Function
            Properties:
              Handler: echo
              Events:
                Post:
                  Type: HttpApi
                  Properties:
                    Path: /echo/{name}
                    Method: POST
          Sleep:
            Type: AWS::Serverless::Function
            Properties:
              Handler: sleep
              Timeout: 1
              Events:
                Post:
                  Type: HttpApi
                  Properties:
                    Path: /sleep
                    Method: POST
          Stream:
            Type: AWS::Serverless::Function
            Properties:
              Handler: stream
              FunctionUrlConfig:
                AuthType: NONE
                InvokeMode: RESPONSE_STREAM
              Events:
                Get:
                  Type: HttpApi
                  Properties:
                    Path: /stream
                    Method: GET
          Managed:
            Type: AWS::Serverless::Function
            Properties:
              Handler: sleep
              Timeout: 5
              ReservedConcurrentExecutions: 1
              Environment:
                Variables:
                  AWS_LAMBDA_MAX_CONCURRENCY: "4"
              Events:
                Post:
                  Type: HttpApi
                  Properties:
                    Path: /managed
                    Method: POST
          Crash:
            Type: AWS::Serverless::Function
            Properties:
              Handler: crash
              Events:
                Post:
                  Type: HttpApi
                  Properties:
                    Path: /crash
                    Method: POST
          Mystery:
            Type: AWS::StepFunctions::StateMachine
        """

    func withStack<R: Sendable>(_ body: (String, LocalStack) async throws -> R) async throws -> R {
        try await withTemplateStack(Self.template) { addresses, stack in try await body(addresses.httpAPI, stack) }
    }

    func post(_ url: String, _ body: String) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    @Test("HTTP API: a payload 2.0 event with path parameters, query and body; the environment the template gives; 404 for no route; a warning for what is not emulated")
    func httpRoundTrip() async throws {
        try await withStack { url, stack in
            let echoed = try await post("\(url)/echo/ada?x=1&x=2", #"{"hi":true}"#)
            #expect(echoed.status == 200)
            let event = try JSONSerialization.jsonObject(with: Data(echoed.body.utf8)) as! [String: Any]
            #expect(event["routeKey"] as? String == "POST /echo/{name}")
            #expect((event["pathParameters"] as? [String: String])?["name"] == "ada")
            #expect((event["queryStringParameters"] as? [String: String])?["x"] == "1,2")
            #expect(event["body"] as? String == #"{"hi":true}"#)
            let missing = try await post("\(url)/nowhere", "{}")
            #expect(missing.status == 404 && missing.body == #"{"message":"Not Found"}"#)
            #expect(stack.warnings.withLock { $0 }.contains { $0.contains("Mystery") })
            // Warm reuse: a second request finds the same environment.
            _ = try await post("\(url)/echo/bo", "{}")
            #expect(stack.functionStatistics["Echo"]?.coldStarts == 1)
            #expect(stack.functionStatistics["Echo"]?.invocations == 2)
        }
    }

    @Test("A function past its timeout is killed (500) and the next request succeeds on a fresh process")
    func timeout() async throws {
        try await withStack { url, stack in
            let slow = try await post("\(url)/sleep", #"{"seconds":3}"#)
            #expect(slow.status == 500 && slow.body.contains("Internal Server Error"))
            let fast = try await post("\(url)/sleep", #"{"seconds":0.1}"#)
            #expect(fast.status == 200 && fast.body.contains(#""slept":0.1"#), "\(fast)")
            #expect((stack.functionStatistics["Sleep"]?.coldStarts ?? 0) >= 2, "the killed environment was replaced")
        }
    }

    @Test("A function whose process crashes is restarted for the next request")
    func crash() async throws {
        try await withStack { url, stack in
            let before = try await post("\(url)/crash", "{}")
            #expect(before.status == 200)
            let crashed = try await post("\(url)/crash", #"{"exitCode":3}"#)
            #expect(crashed.status == 500)
            let after = try await post("\(url)/crash", "{}")
            #expect(after.status == 200 && after.body != before.body, "a new process answers")
        }
    }

    @Test("Concurrent requests get environments of their own, up to the function's concurrency")
    func concurrency() async throws {
        try await withStack { url, stack in
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<3 { group.addTask { _ = try? await post("\(url)/sleep", #"{"seconds":0.5}"#) } }
            }
            #expect((stack.functionStatistics["Sleep"]?.coldStarts ?? 0) >= 3, "overlapping requests each got an environment")
        }
    }

    @Test("A function marked RESPONSE_STREAM streams through the HTTP API: status and headers from its prelude, chunks as written")
    func streamingRoute() async throws {
        try await withStack { url, _ in
            var request = HTTPClientRequest(url: "\(url)/stream?chunks=3&intervalMilliseconds=400")
            request.method = .GET
            let started = ContinuousClock.now
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            #expect(response.status == .ok)
            #expect(response.headers.first(name: "content-type") == "text/plain; charset=utf-8")
            #expect(response.headers.first(name: "transfer-encoding") == "chunked")
            var arrivals: [(Duration, String)] = []
            for try await chunk in response.body { arrivals.append((ContinuousClock.now - started, String(buffer: chunk))) }
            #expect(arrivals.map(\.1).joined() == "chunk 1 of 3\nchunk 2 of 3\nchunk 3 of 3\n")
            let first = try #require(arrivals.first?.0)
            let last = try #require(arrivals.last?.0)
            #expect(last - first > .milliseconds(600), "the chunks came as written, not all at the end")
        }
    }

    @Test("A function with AWS_LAMBDA_MAX_CONCURRENCY=4 serves four overlapping requests in one process")
    func concurrentMode() async throws {
        try await withStack { url, stack in
            let started = ContinuousClock.now
            let answers = await withTaskGroup(of: String.self) { group in
                for _ in 0..<4 { group.addTask { (try? await post("\(url)/managed", #"{"seconds":0.6}"#))?.body ?? "" } }
                return await group.reduce(into: []) { $0.append($1) }
            }
            let elapsed = ContinuousClock.now - started
            #expect(answers.allSatisfy { $0.contains("\"slept\":0.6") }, "\(answers)")
            #expect(stack.functionStatistics["Managed"]?.coldStarts == 1, "one environment (reserved concurrency 1) took all four")
            #expect(elapsed < .milliseconds(2000), "the four overlapped: \(elapsed)")
        }
    }

    @Test("Template values: Ref, GetAtt, Sub and parameters resolve to local values")
    func resolution() throws {
        let template = try CloudFormationTemplate(yaml: Self.template)
        var resolver = TemplateResolver(template: template, parameterOverrides: ["Greeting": "hi"], region: "eu-west-1") { _ in }
        resolver.references["Jobs"] = "http://127.0.0.1:4566/000000000000/Jobs"
        let variables = template.globals["Function"]?["Environment"]?["Variables"]
        #expect(resolver.string(variables!["GREETING"]!, context: "test") == "hi from eu-west-1")
        #expect(resolver.string(variables!["QUEUE_URL"]!, context: "test") == "http://127.0.0.1:4566/000000000000/Jobs")
        #expect(resolver.string(.tagged("Join", .list([.string("-"), .list([.string("a"), .tagged("Ref", .string("AWS::Region"))])])), context: "t") == "a-eu-west-1")
    }
}
