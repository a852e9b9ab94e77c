import Foundation
import MartletAWS
import NIOCore

/// The application a template describes, made local: resources created in the local endpoint,
/// functions with the environment they would see on AWS (pointed at the local services), routes,
/// and the workers' environment.
struct LocalApplication {
    struct Function {
        var configuration: FunctionConfiguration
        var maxEnvironments: Int
    }

    var functions: [Function] = []
    var httpRoutes: [HTTPAPIRoute] = []
    var cors: HTTPAPICORS?
    var webSocket: WebSocketGateway.Configuration?
    var workerEnvironment: [String: String]?

    static let supportedTypes: Set<String> = [
        "AWS::Serverless::Function", "AWS::Serverless::HttpApi", "AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::S3::Bucket",
        "AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Route", "AWS::ApiGatewayV2::RouteResponse", "AWS::ApiGatewayV2::Integration", "AWS::ApiGatewayV2::Stage", "AWS::ECS::TaskDefinition",
    ]
    /// Resources that only matter on AWS (permissions, networking, scaling, logs): nothing to do locally.
    static let ignoredPrefixes = [
        "AWS::IAM::", "AWS::Logs::", "AWS::Lambda::Permission", "AWS::EC2::", "AWS::AutoScaling::", "AWS::ApplicationAutoScaling::", "AWS::CloudWatch::",
        "AWS::ECS::Cluster", "AWS::ECS::CapacityProvider", "AWS::ECS::ClusterCapacityProviderAssociations", "AWS::ECS::Service", "AWS::S3::BucketPolicy",
        "AWS::ApiGatewayV2::Deployment", "AWS::SNS::", "AWS::KMS::", "AWS::Events::",
    ]

    static func build(
        template: CloudFormationTemplate, resolver: inout TemplateResolver, endpoint: LocalEndpoint, endpointURL: String, managementURL: String,
        options: LocalStack.Options, warn: @escaping @Sendable (String) -> Void
    ) async throws -> LocalApplication {
        var application = LocalApplication()
        let region = options.region
        let account = resolver.accountID
        let host = endpointURL.replacingOccurrences(of: "http://", with: "")
        for resource in template.resources {
            if let condition = resource.condition, !resolver.isTrue(condition, context: resource.logicalID) { continue }
            if !supportedTypes.contains(resource.type), !ignoredPrefixes.contains(where: resource.type.hasPrefix) {
                warn("\(resource.logicalID) (\(resource.type)) is not emulated locally; it is skipped")
            }
        }
        // Names first, so references resolve whatever the order.
        for queue in template.resources(ofType: "AWS::SQS::Queue") {
            let name = resolver.string(queue.properties["QueueName"] ?? .string(queue.logicalID), context: queue.logicalID)
            resolver.references[queue.logicalID] = "http://\(host)/\(account)/\(name)"
            resolver.attributes["\(queue.logicalID).Arn"] = "arn:aws:sqs:\(region):\(account):\(name)"
            resolver.attributes["\(queue.logicalID).QueueName"] = name
            resolver.attributes["\(queue.logicalID).QueueUrl"] = "http://\(host)/\(account)/\(name)"
        }
        for table in template.resources(ofType: "AWS::DynamoDB::Table") {
            let name = resolver.string(table.properties["TableName"] ?? .string(table.logicalID), context: table.logicalID)
            resolver.references[table.logicalID] = name
            resolver.attributes["\(table.logicalID).Arn"] = "arn:aws:dynamodb:\(region):\(account):table/\(name)"
        }
        for bucket in template.resources(ofType: "AWS::S3::Bucket") {
            let name = bucket.properties["BucketName"].map { resolver.string($0, context: bucket.logicalID) } ?? bucket.logicalID.lowercased()
            resolver.references[bucket.logicalID] = name
            resolver.attributes["\(bucket.logicalID).Arn"] = "arn:aws:s3:::\(name)"
            resolver.attributes["\(bucket.logicalID).DomainName"] = "\(name).localhost"
        }
        for api in template.resources(ofType: "AWS::ApiGatewayV2::Api") + template.resources(ofType: "AWS::Serverless::HttpApi") {
            resolver.references[api.logicalID] = "local\(api.logicalID.lowercased())"
        }
        for stage in template.resources(ofType: "AWS::ApiGatewayV2::Stage") {
            resolver.references[stage.logicalID] = resolver.string(stage.properties["StageName"] ?? .string("local"), context: stage.logicalID)
        }
        for function in template.resources(ofType: "AWS::Serverless::Function") {
            resolver.references[function.logicalID] = function.logicalID
            resolver.attributes["\(function.logicalID).Arn"] = "arn:aws:lambda:\(region):\(account):function:\(function.logicalID)"
        }

        // Resources in the local services.
        for queue in template.resources(ofType: "AWS::SQS::Queue") {
            var attributes: [String: String] = [:]
            for (property, attribute) in [("VisibilityTimeout", "VisibilityTimeout"), ("MessageRetentionPeriod", "MessageRetentionPeriod"), ("DelaySeconds", "DelaySeconds"),
                                          ("ReceiveMessageWaitTimeSeconds", "ReceiveMessageWaitTimeSeconds"), ("MaximumMessageSize", "MaximumMessageSize")] {
                if let value = queue.properties[property] { attributes[attribute] = resolver.string(value, context: queue.logicalID) }
            }
            try await call(endpoint, "AmazonSQS.CreateQueue", ["QueueName": resolver.attributes["\(queue.logicalID).QueueName"]!, "Attributes": attributes], host: host)
        }
        for queue in template.resources(ofType: "AWS::SQS::Queue") {
            guard let redrive = queue.properties["RedrivePolicy"] else { continue }
            guard case .map(let policy) = resolver.resolve(redrive, context: queue.logicalID) else { continue }
            let target = policy["deadLetterTargetArn"]?.string ?? ""
            let count = policy["maxReceiveCount"]?.string ?? "3"
            try await call(endpoint, "AmazonSQS.SetQueueAttributes", [
                "QueueUrl": resolver.references[queue.logicalID]!,
                "Attributes": ["RedrivePolicy": #"{"deadLetterTargetArn":"\#(target)","maxReceiveCount":"\#(count)"}"#],
            ], host: host)
        }
        for table in template.resources(ofType: "AWS::DynamoDB::Table") {
            let name = resolver.references[table.logicalID]!
            let keys = resolver.resolve(table.properties["KeySchema"] ?? .list([]), context: table.logicalID).list ?? []
            let definitions = resolver.resolve(table.properties["AttributeDefinitions"] ?? .list([]), context: table.logicalID).list ?? []
            let keySchema = keys.map { ["AttributeName": $0["AttributeName"]?.string ?? "", "KeyType": $0["KeyType"]?.string ?? "HASH"] }
            let keyNames = Set(keySchema.map { $0["AttributeName"]! })
            let attributeDefinitions = definitions.compactMap { definition -> [String: String]? in
                guard let name = definition["AttributeName"]?.string, keyNames.contains(name) else { return nil }
                return ["AttributeName": name, "AttributeType": definition["AttributeType"]?.string ?? "S"]
            }
            if table.properties["GlobalSecondaryIndexes"] != nil || table.properties["LocalSecondaryIndexes"] != nil {
                warn("\(table.logicalID): secondary indexes are not emulated locally; queries on them fail")
            }
            let created = try await call(endpoint, "DynamoDB_20120810.CreateTable", [
                "TableName": name, "KeySchema": keySchema, "AttributeDefinitions": attributeDefinitions, "BillingMode": "PAY_PER_REQUEST",
            ], host: host, allowing: "ResourceInUseException")
            _ = created
            if let ttl = table.properties["TimeToLiveSpecification"], case .map(let spec) = resolver.resolve(ttl, context: table.logicalID),
                spec["Enabled"]?.string == "true", let attribute = spec["AttributeName"]?.string
            {
                try await call(endpoint, "DynamoDB_20120810.UpdateTimeToLive", [
                    "TableName": name, "TimeToLiveSpecification": ["Enabled": true, "AttributeName": attribute],
                ], host: host, allowing: "ValidationException")
            }
        }
        for bucket in template.resources(ofType: "AWS::S3::Bucket") {
            let name = resolver.references[bucket.logicalID]!
            try endpoint.s3.ensureBucket(name)
            if let rules = bucket.properties["CorsConfiguration"]?["CorsRules"].map({ resolver.resolve($0, context: bucket.logicalID) })?.list {
                let cors = S3CORSConfiguration(rules: rules.map { rule in
                    func strings(_ key: String) -> [String] { rule[key]?.list?.compactMap(\.string) ?? [] }
                    return .init(
                        id: rule["Id"]?.string, allowedOrigins: strings("AllowedOrigins"), allowedMethods: strings("AllowedMethods"),
                        allowedHeaders: strings("AllowedHeaders"), exposeHeaders: strings("ExposedHeaders"), maxAgeSeconds: rule["MaxAge"]?.string.flatMap(Int.init)
                    )
                })
                try endpoint.s3.setCORS(cors, bucket: name)
            }
        }

        // What functions and workers see: AWS's variables, pointed at the local services.
        let apiEndpoints = template.resources(ofType: "AWS::ApiGatewayV2::Api").map { resolver.references[$0.logicalID]! }
        func localize(_ environment: [String: String]) -> [String: String] {
            var environment = environment
            for (name, value) in environment {
                // The @connections endpoint of the WebSocket API: the local gateway's.
                for api in apiEndpoints where value.contains("\(api).execute-api.") {
                    let stage = value.split(separator: "/").last.map(String.init) ?? ""
                    environment[name] = "\(managementURL)/\(stage)"
                }
            }
            if environment["CLIENT_KEYS_SECRET_ARN"] != nil || environment["CLIENT_KEYS"] != nil {
                environment["CLIENT_KEYS_SECRET_ARN"] = nil
                environment["CLIENT_KEYS"] = options.clientKeys.joined(separator: ",")
            }
            environment["AWS_ENDPOINT_URL"] = endpointURL
            environment["AWS_REGION"] = region
            environment["AWS_DEFAULT_REGION"] = region
            environment["AWS_ACCESS_KEY_ID"] = "test"
            environment["AWS_SECRET_ACCESS_KEY"] = "test"
            environment["AWS_SESSION_TOKEN"] = nil
            return environment.merging(options.environment) { $1 }
        }

        let globals = template.globals["Function"] ?? .map([:])
        for function in template.resources(ofType: "AWS::Serverless::Function") {
            let properties = function.properties
            func property(_ name: String) -> TemplateValue? { properties[name] ?? globals[name] }
            var variables: [String: String] = [:]
            for source in [globals["Environment"]?["Variables"], properties["Environment"]?["Variables"]] {
                guard case .map(let members)? = source else { continue }
                for (name, value) in members { variables[name] = resolver.string(value, context: "\(function.logicalID).\(name)") }
            }
            let handler = property("Handler").map { resolver.string($0, context: function.logicalID) } ?? ""
            let timeout = property("Timeout").map { Int(resolver.string($0, context: function.logicalID)) ?? 3 } ?? 3
            let memory = property("MemorySize").map { Int(resolver.string($0, context: function.logicalID)) ?? 128 } ?? 128
            let reserved = property("ReservedConcurrentExecutions").flatMap { Int(resolver.string($0, context: function.logicalID)) }
            // A function URL in RESPONSE_STREAM mode marks a function whose responses stream; its
            // HTTP API routes stream locally too.
            let streams = property("FunctionUrlConfig")?["InvokeMode"].map { resolver.string($0, context: function.logicalID) } == "RESPONSE_STREAM"
            application.functions.append(Function(
                configuration: FunctionConfiguration(
                    name: function.logicalID, handler: handler, command: [options.bootstrap], memorySize: memory, timeout: .seconds(timeout),
                    region: region, maxConcurrency: Self.maxConcurrency(variables), variables: localize(variables)
                ),
                maxEnvironments: reserved ?? 10
            ))
            if case .map(let events)? = properties["Events"] {
                for (_, event) in events.sorted(by: { $0.key < $1.key }) where event["Type"]?.string == "HttpApi" {
                    let path = event["Properties"]?["Path"].map { resolver.string($0, context: function.logicalID) } ?? "$default"
                    let method = event["Properties"]?["Method"].map { resolver.string($0, context: function.logicalID) } ?? "ANY"
                    var route = HTTPAPIRoute(method: method, path: path, function: function.logicalID)
                    route.streamsResponse = streams
                    application.httpRoutes.append(route)
                }
            }
        }
        if let httpAPI = template.resources(ofType: "AWS::Serverless::HttpApi").first, let cors = httpAPI.properties["CorsConfiguration"] {
            let resolved = resolver.resolve(cors, context: httpAPI.logicalID)
            func strings(_ key: String) -> [String] { resolved[key]?.list?.compactMap(\.string) ?? [] }
            application.cors = HTTPAPICORS(
                allowOrigins: strings("AllowOrigins"), allowMethods: strings("AllowMethods"), allowHeaders: strings("AllowHeaders"),
                exposeHeaders: strings("ExposeHeaders"), maxAge: resolved["MaxAge"]?.string.flatMap(Int.init), allowCredentials: resolved["AllowCredentials"]?.string == "true"
            )
        }

        // The WebSocket API: route keys → integrations → functions.
        if let api = template.resources(ofType: "AWS::ApiGatewayV2::Api").first(where: { $0.properties["ProtocolType"]?.string == "WEBSOCKET" }) {
            let functionIDs = template.resources(ofType: "AWS::Serverless::Function").map(\.logicalID)
            func mentionedFunction(_ value: TemplateValue) -> String? {
                let text = "\(value)"
                return functionIDs.sorted { $0.count > $1.count }.first { text.contains("\"\($0)") || text.contains("{\($0)") || text.contains("\($0).Arn") || text.contains("(\"\($0)") }
            }
            var routes: [String: String] = [:]
            var twoWayRoutes: Set<String> = []
            let routeResponses = template.resources(ofType: "AWS::ApiGatewayV2::RouteResponse")
            for route in template.resources(ofType: "AWS::ApiGatewayV2::Route") {
                let key = resolver.string(route.properties["RouteKey"] ?? .string(""), context: route.logicalID)
                let target = "\(route.properties["Target"] ?? .null)"
                guard let integration = template.resources(ofType: "AWS::ApiGatewayV2::Integration").first(where: { target.contains($0.logicalID) }),
                    let function = mentionedFunction(integration.properties["IntegrationUri"] ?? .null)
                else {
                    warn("\(route.logicalID): route \(key) has no Lambda integration the emulator understands; it is skipped")
                    continue
                }
                routes[key] = function
                // Two-way: a `$default` route response for this route, which selects it.
                let responses = routeResponses.filter { response in
                    response.properties["RouteId"]?.referencedResource == route.logicalID
                        && resolver.string(response.properties["RouteResponseKey"] ?? .string(""), context: response.logicalID) == "$default"
                }
                if !responses.isEmpty {
                    if route.properties["RouteResponseSelectionExpression"] == nil {
                        warn("\(route.logicalID): route \(key) has a route response but no RouteResponseSelectionExpression; like API Gateway, it stays one-way")
                    } else {
                        twoWayRoutes.insert(key)
                    }
                }
            }
            let stage = template.resources(ofType: "AWS::ApiGatewayV2::Stage").first.map { resolver.references[$0.logicalID] ?? "local" } ?? "local"
            application.webSocket = WebSocketGateway.Configuration(
                routeSelectionExpression: api.properties["RouteSelectionExpression"]?.string ?? "$request.body.action", routes: routes, stage: stage,
                apiID: resolver.references[api.logicalID] ?? "local", twoWayRoutes: twoWayRoutes
            )
        }

        // Workers: the first ECS task definition's container environment.
        if let task = template.resources(ofType: "AWS::ECS::TaskDefinition").first,
            let container = resolver.resolve(task.properties["ContainerDefinitions"] ?? .list([]), context: task.logicalID).list?.first
        {
            var variables: [String: String] = [:]
            for entry in container["Environment"]?.list ?? [] {
                if let name = entry["Name"]?.string { variables[name] = entry["Value"]?.string ?? "" }
            }
            variables["HEALTH_PORT"] = "0"
            variables["STOP_TIMEOUT"] = variables["STOP_TIMEOUT"] ?? "5"
            application.workerEnvironment = localize(variables)
        }
        return application
    }

    /// Calls a JSON-protocol operation of the local endpoint in-process.
    @discardableResult
    /// Invocations one process serves at once: the function's `AWS_LAMBDA_MAX_CONCURRENCY` (as on
    /// Lambda Managed Instances, 1 to 64), else 1 as on standard Lambda.
    static func maxConcurrency(_ variables: [String: String]) -> Int {
        min(64, max(1, variables["AWS_LAMBDA_MAX_CONCURRENCY"].flatMap { Int($0) } ?? 1))
    }

    @discardableResult
    static func call(_ endpoint: LocalEndpoint, _ target: String, _ body: [String: Any], host: String, allowing allowed: String? = nil) async throws -> ByteBuffer {
        let data = try JSONSerialization.data(withJSONObject: body)
        let parts = target.split(separator: ".", maxSplits: 1).map(String.init)
        let response: HTTPServerResponse
        if parts[0] == "AmazonSQS" {
            response = await endpoint.sqs.handle(operation: parts[1], body: ByteBuffer(bytes: data), host: host, requestID: "local")
        } else {
            response = await endpoint.dynamoDB.handle(operation: parts[1], body: ByteBuffer(bytes: data), requestID: "local")
        }
        let text = String(buffer: response.body)
        if response.status.code >= 300 {
            if let allowed, text.contains(allowed) { return response.body }
            throw TemplateError("\(target) failed: \(text)")
        }
        return response.body
    }
}
