import Foundation
import Yams

/// A value of a CloudFormation template, with short-form intrinsic tags (`!Ref`, `!GetAtt`, `!Sub`, …)
/// kept as tags until they are resolved.
public indirect enum TemplateValue: Sendable, Equatable {
    case string(String)
    case list([TemplateValue])
    case map([String: TemplateValue])
    /// A short-form intrinsic function: `!Ref X` is `.tagged("Ref", .string("X"))`.
    case tagged(String, TemplateValue)
    case null

    public subscript(key: String) -> TemplateValue? {
        if case .map(let members) = self { return members[key] }
        return nil
    }

    public var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The logical id a `!Ref` (or `{"Ref": …}`) names.
    public var referencedResource: String? {
        switch self {
        case .tagged("Ref", .string(let id)): id
        case .map(let members) where members.count == 1: members["Ref"]?.string
        default: nil
        }
    }

    public var list: [TemplateValue]? {
        if case .list(let value) = self { return value }
        return nil
    }

    init(_ node: Node) {
        let tag = node.tag.description
        let value: TemplateValue
        switch node {
        case .scalar(let scalar):
            value = scalar.style == .plain && scalar.string == "null" || scalar.string == "~" ? .null : .string(scalar.string)
        case .sequence(let sequence): value = .list(sequence.map(TemplateValue.init))
        case .mapping(let mapping):
            var members: [String: TemplateValue] = [:]
            for (key, child) in mapping { members[key.string ?? ""] = TemplateValue(child) }
            value = .map(members)
        }
        if tag.hasPrefix("!"), !tag.hasPrefix("!!") {
            self = .tagged(String(tag.dropFirst()), value)
        } else {
            self = value
        }
    }
}

/// A parsed template: parameters, globals and resources, as written.
public struct CloudFormationTemplate: Sendable {
    public struct Resource: Sendable {
        public var logicalID: String
        public var type: String
        public var properties: TemplateValue
        public var condition: String?
    }

    public var parameters: [String: TemplateValue]
    public var conditions: [String: TemplateValue]
    public var globals: TemplateValue
    public var resources: [Resource]

    public init(yaml: String) throws {
        guard let node = try Yams.compose(yaml: yaml) else { throw TemplateError("the template is empty") }
        let root = TemplateValue(node)
        guard case .map(let resources)? = root["Resources"] else { throw TemplateError("the template has no Resources") }
        if case .map(let parameters)? = root["Parameters"] { self.parameters = parameters } else { self.parameters = [:] }
        if case .map(let conditions)? = root["Conditions"] { self.conditions = conditions } else { self.conditions = [:] }
        globals = root["Globals"] ?? .null
        self.resources = resources.keys.sorted().map { id in
            let resource = resources[id]!
            return Resource(logicalID: id, type: resource["Type"]?.string ?? "", properties: resource["Properties"] ?? .map([:]), condition: resource["Condition"]?.string)
        }
    }

    public init(contentsOf path: String) throws {
        try self.init(yaml: String(contentsOfFile: path, encoding: .utf8))
    }

    public func resource(_ id: String) -> Resource? { resources.first { $0.logicalID == id } }
    public func resources(ofType type: String) -> [Resource] { resources.filter { $0.type == type } }
}

public struct TemplateError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Resolves intrinsic functions to local values: `!Ref` of parameters (their defaults, or
/// overrides) and resources (local names, URLs and ARNs), `!GetAtt`, `!Sub`, `!Join`, `!Select`,
/// `!If` with the template's conditions, and the pseudo parameters. What it cannot honour it
/// reports through `warn`, naming the construct, and resolves to an empty string.
public struct TemplateResolver: Sendable {
    public let template: CloudFormationTemplate
    public var parameterValues: [String: String]
    /// What `!Ref` of a resource gives (a queue's URL, a table's name, …).
    public var references: [String: String]
    /// What `!GetAtt Resource.Attribute` gives, keyed `Resource.Attribute`.
    public var attributes: [String: String]
    public var region: String
    public var accountID = "000000000000"
    public var stackName = "martlet-local"
    public var warn: @Sendable (String) -> Void

    public init(template: CloudFormationTemplate, parameterOverrides: [String: String] = [:], region: String, warn: @escaping @Sendable (String) -> Void) {
        self.template = template
        self.region = region
        self.warn = warn
        references = [:]
        attributes = [:]
        var values: [String: String] = [:]
        for (name, definition) in template.parameters {
            if let value = parameterOverrides[name] {
                values[name] = value
            } else if let value = definition["Default"] {
                values[name] = value.string ?? ""
            }
        }
        parameterValues = values
    }

    /// A value as a string (lists are joined with commas, as CloudFormation does for `Ref` of list parameters).
    public func string(_ value: TemplateValue, context: String) -> String {
        switch resolve(value, context: context) {
        case .string(let text): return text
        case .list(let items): return items.compactMap { string($0, context: context) }.joined(separator: ",")
        case .null: return ""
        default:
            warn("\(context): expected a string, got a structure; using an empty value")
            return ""
        }
    }

    /// Resolves every intrinsic inside `value`.
    public func resolve(_ value: TemplateValue, context: String) -> TemplateValue {
        switch value {
        case .string, .null: return value
        case .list(let items): return .list(items.map { resolve($0, context: context) })
        case .map(let members):
            if members.count == 1, let (key, argument) = members.first, key == "Ref" || key.hasPrefix("Fn::") {
                let name = key == "Ref" ? "Ref" : String(key.dropFirst(4))
                return intrinsic(name, argument, context: context)
            }
            return .map(members.mapValues { resolve($0, context: context) })
        case .tagged(let name, let argument): return intrinsic(name, argument, context: context)
        }
    }

    private func intrinsic(_ name: String, _ argument: TemplateValue, context: String) -> TemplateValue {
        switch name {
        case "Ref":
            let target = string(argument, context: context)
            return .string(ref(target, context: context))
        case "GetAtt":
            var parts: [String]
            if let text = argument.string { parts = text.split(separator: ".", maxSplits: 1).map(String.init) } else {
                parts = (resolve(argument, context: context).list ?? []).compactMap(\.string)
            }
            guard parts.count == 2 else {
                warn("\(context): !GetAtt needs Resource.Attribute")
                return .string("")
            }
            return .string(getAtt(parts[0], parts[1], context: context))
        case "Sub":
            var text = ""
            var variables: [String: String] = [:]
            if let plain = argument.string {
                text = plain
            } else if let items = argument.list, items.count == 2 {
                text = items[0].string ?? ""
                if case .map(let members) = items[1] { for (key, member) in members { variables[key] = string(member, context: context) } }
            }
            return .string(substitute(text, variables: variables, context: context))
        case "Join":
            guard let items = argument.list, items.count == 2, let separator = items[0].string else {
                warn("\(context): malformed !Join")
                return .string("")
            }
            let values = (resolve(items[1], context: context).list ?? []).map { string($0, context: context) }
            return .string(values.joined(separator: separator))
        case "Select":
            guard let items = argument.list, items.count == 2, let index = Int(string(items[0], context: context)),
                let list = resolve(items[1], context: context).list, list.indices.contains(index)
            else {
                warn("\(context): malformed !Select")
                return .string("")
            }
            return list[index]
        case "If":
            guard let items = argument.list, items.count == 3, let condition = items[0].string else {
                warn("\(context): malformed !If")
                return .null
            }
            return resolve(isTrue(condition, context: context) ? items[1] : items[2], context: context)
        case "Split":
            guard let items = argument.list, items.count == 2, let separator = items[0].string else { return .list([]) }
            return .list(string(items[1], context: context).components(separatedBy: separator).map(TemplateValue.string))
        case "GetAZs": return .list([.string("\(region)a"), .string("\(region)b")])
        default:
            warn("\(context): !\(name) is not supported locally; using an empty value")
            return .string("")
        }
    }

    /// Evaluates a named condition (`!Equals`, `!Not`, `!And`, `!Or`, `!Condition`).
    public func isTrue(_ condition: String, context: String) -> Bool {
        guard let definition = template.conditions[condition] else {
            warn("\(context): unknown condition \(condition); taken as false")
            return false
        }
        return evaluate(definition, context: context)
    }

    private func evaluate(_ value: TemplateValue, context: String) -> Bool {
        var name = ""
        var argument = TemplateValue.null
        switch value {
        case .tagged(let tag, let inner): (name, argument) = (tag, inner)
        case .map(let members) where members.count == 1: (name, argument) = (members.first!.key.replacingOccurrences(of: "Fn::", with: ""), members.first!.value)
        default: return false
        }
        let items = argument.list ?? []
        switch name {
        case "Equals" where items.count == 2: return string(items[0], context: context) == string(items[1], context: context)
        case "Not" where items.count == 1: return !evaluate(items[0], context: context)
        case "And": return items.allSatisfy { evaluate($0, context: context) }
        case "Or": return items.contains { evaluate($0, context: context) }
        case "Condition": return isTrue(argument.string ?? "", context: context)
        default:
            warn("\(context): condition function \(name) is not supported locally; taken as false")
            return false
        }
    }

    func ref(_ target: String, context: String) -> String {
        switch target {
        case "AWS::Region": return region
        case "AWS::AccountId": return accountID
        case "AWS::Partition": return "aws"
        case "AWS::StackName": return stackName
        case "AWS::URLSuffix": return "amazonaws.com"
        case "AWS::NoValue": return ""
        case "AWS::StackId": return "arn:aws:cloudformation:\(region):\(accountID):stack/\(stackName)/local"
        default: break
        }
        if let value = parameterValues[target] { return value }
        if template.parameters[target] != nil {
            warn("parameter \(target) has no value locally (no Default); --parameter \(target)=VALUE sets one")
            return ""
        }
        if let value = references[target] { return value }
        if template.resource(target) != nil { return target }
        warn("\(context): !Ref \(target) names nothing in the template")
        return ""
    }

    func getAtt(_ resource: String, _ attribute: String, context: String) -> String {
        if let value = attributes["\(resource).\(attribute)"] { return value }
        guard let found = template.resource(resource) else {
            warn("\(context): !GetAtt \(resource).\(attribute) names no resource")
            return ""
        }
        if attribute == "Arn" { return "arn:aws:local:\(region):\(accountID):\(found.type):\(resource)" }
        return "\(resource).\(attribute)"
    }

    /// `${Name}`, `${Resource.Attribute}`, `${AWS::Region}` and `${!Literal}`.
    func substitute(_ text: String, variables: [String: String], context: String) -> String {
        var output = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            output += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                output += rest[start.lowerBound...]
                return output
            }
            let name = String(rest[start.upperBound..<end])
            if name.hasPrefix("!") {
                output += "${" + name.dropFirst() + "}"
            } else if let value = variables[name] {
                output += value
            } else if name.contains("."), !name.hasPrefix("AWS::") {
                let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
                output += getAtt(parts[0], parts[1], context: context)
            } else {
                output += ref(name, context: context)
            }
            rest = rest[rest.index(after: end)...]
        }
        return output + rest
    }
}
