import Synchronization
import MartletAWS

// DynamoDB's expression languages for the local endpoint: condition and filter expressions, update expressions,
// key condition expressions and projection expressions, with DynamoDB's grammar, evaluation rules and
// `ValidationException` wording.
//
// Grammar notes (as DynamoDB's own lexer behaves):
// - a bare attribute name is a letter followed by letters, digits and `_`; anything else needs a `#name`;
// - `#name` and `:value` placeholders are `#`/`:` followed by letters, digits and `_`;
// - list indexes are unsigned integer literals; no other literals exist;
// - keywords (`AND OR NOT BETWEEN IN`, `SET REMOVE ADD DELETE`) are case-insensitive, function names are not;
// - DynamoDB's reserved words may not be used as bare attribute names.

// MARK: - Errors

/// A DynamoDB `ValidationException` raised while parsing or applying an expression, worded as DynamoDB words it.
public struct ExpressionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The message DynamoDB sends with the `ValidationException`.
    public let message: String

    /// An error carrying `message` verbatim.
    public init(message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}

extension ExpressionError {
    static let missingAttribute = ExpressionError(message: "The provided expression refers to an attribute that does not exist in the item")
    static let incorrectOperandType = ExpressionError(message: "An operand in the update expression has an incorrect data type")
    static let invalidDocumentPath = ExpressionError(message: "The document path provided in the update expression is invalid for update")
}

/// Checks that span all the expressions of one DynamoDB request.
public enum DynamoDBExpressions {
    /// Rejects malformed placeholder keys, then any `ExpressionAttributeNames` / `ExpressionAttributeValues` entry that
    /// none of the request's expressions uses; call it after the expressions themselves have been parsed.
    public static func checkAllUsed(names: [String: String], values: [String: AttributeValue], expressions: [String?]) throws(ExpressionError) {
        // The usual case (every key well formed and used) is checked without sorting or copying.
        if !names.keys.allSatisfy({ isPlaceholderKey($0, sigil: "#") }) {
            for key in names.keys.sorted() where !isPlaceholderKey(key, sigil: "#") {
                throw ExpressionError(message: "ExpressionAttributeNames contains invalid key: Syntax error; key: \"\(key)\"")
            }
        }
        if !values.keys.allSatisfy({ isPlaceholderKey($0, sigil: ":") }) {
            for key in values.keys.sorted() where !isPlaceholderKey(key, sigil: ":") {
                throw ExpressionError(message: "ExpressionAttributeValues contains invalid key: Syntax error; key: \"\(key)\"")
            }
        }
        func isUsed(_ key: String) -> Bool { expressions.contains { $0.map { ExpressionLexer.placeholders($0).contains(key) } ?? false } }
        if !names.keys.allSatisfy(isUsed) {
            let keys = names.keys.filter { !isUsed($0) }.sorted().joined(separator: ", ")
            throw ExpressionError(message: "Value provided in ExpressionAttributeNames unused in expressions: keys: {\(keys)}")
        }
        if !values.keys.allSatisfy(isUsed) {
            let keys = values.keys.filter { !isUsed($0) }.sorted().joined(separator: ", ")
            throw ExpressionError(message: "Value provided in ExpressionAttributeValues unused in expressions: keys: {\(keys)}")
        }
    }

    /// `#name` or `:value`: the sigil, then one or more ASCII letters, digits and underscores
    /// (read as bytes: every request checks each of its keys).
    static func isPlaceholderKey(_ key: String, sigil: Character) -> Bool {
        let bytes = key.utf8
        guard bytes.count > 1, let first = bytes.first, let sigil = sigil.asciiValue, first == sigil else { return false }
        return bytes.dropFirst().allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
        }
    }
}

// MARK: - Condition and filter expressions

/// A parsed `ConditionExpression` or `FilterExpression`, evaluated against an item.
public struct ConditionExpression: Sendable {
    /// Which request parameter the expression came from; it names the expression in error messages.
    public enum Kind: String, Sendable {
        /// `ConditionExpression` of PutItem, UpdateItem, DeleteItem and transactions.
        case condition = "ConditionExpression"
        /// `FilterExpression` of Query and Scan.
        case filter = "FilterExpression"
    }

    let root: ConditionNode

    /// The top-level attribute names the expression reads (after `#name` substitution).
    public let topLevelNames: Set<String>

    /// Parses and validates `text`, resolving `#name` and `:value` placeholders.
    public init(_ text: String, names: [String: String] = [:], values: [String: AttributeValue] = [:], kind: Kind = .condition) throws(ExpressionError) {
        var parser = try ExpressionParser(text, label: kind.rawValue, names: names, values: values, mode: .condition)
        root = try parser.parseCondition()
        topLevelNames = parser.topLevelNames
    }

    /// Whether the item satisfies the condition; `nil` stands for an item that does not exist.
    public func evaluate(_ item: [String: AttributeValue]?) throws(ExpressionError) -> Bool {
        ConditionEvaluator(item: item).holds(root)
    }
}

/// A comparison operator of the condition grammar.
enum ExpressionComparator: String, Sendable {
    case equal = "="
    case notEqual = "<>"
    case less = "<"
    case lessOrEqual = "<="
    case greater = ">"
    case greaterOrEqual = ">="

    init?(_ token: ExpressionToken) {
        guard token.kind == .symbol, let comparator = ExpressionComparator(rawValue: token.text) else { return nil }
        self = comparator
    }

    var isOrdering: Bool { self != .equal && self != .notEqual }

    /// The operator that means the same with its operands swapped.
    var swapped: ExpressionComparator {
        switch self {
        case .less: .greater
        case .lessOrEqual: .greaterOrEqual
        case .greater: .less
        case .greaterOrEqual: .lessOrEqual
        case .equal, .notEqual: self
        }
    }
}

/// One step of a document path.
enum DocumentPathElement: Hashable, Comparable, Sendable {
    case name(String)
    case index(Int)
}

/// A document path such as `a.b[2].c`; its first element is always a name.
struct DocumentPath: Hashable, Comparable, Sendable, CustomStringConvertible {
    var elements: [DocumentPathElement]

    var topLevelName: String {
        guard case .name(let name) = elements[0] else { return "" }
        return name
    }

    /// DynamoDB's rendering in error messages: `[a, b, [0]]`.
    var description: String {
        let parts = elements.map { element -> String in
            switch element {
            case .name(let name): name
            case .index(let index): "[\(index)]"
            }
        }
        return "[\(parts.joined(separator: ", "))]"
    }

    static func < (lhs: DocumentPath, rhs: DocumentPath) -> Bool {
        for (left, right) in zip(lhs.elements, rhs.elements) where left != right {
            return left < right
        }
        return lhs.elements.count < rhs.elements.count
    }
}

/// A value-producing term: an attribute, a placeholder's value, or a function call.
indirect enum ExpressionOperand: Sendable {
    case path(DocumentPath)
    case value(AttributeValue)
    case function(String, [ExpressionOperand])
}

/// A parsed boolean condition.
indirect enum ConditionNode: Sendable {
    case comparison(ExpressionComparator, ExpressionOperand, ExpressionOperand)
    case between(ExpressionOperand, ExpressionOperand, ExpressionOperand)
    case membership(ExpressionOperand, [ExpressionOperand])
    case function(String, [ExpressionOperand])
    case and(ConditionNode, ConditionNode)
    case or(ConditionNode, ConditionNode)
    case not(ConditionNode)
}

/// Evaluates conditions and operands against one item.
struct ConditionEvaluator {
    let item: [String: AttributeValue]?

    func holds(_ node: ConditionNode) -> Bool {
        switch node {
        case .and(let left, let right): return holds(left) && holds(right)
        case .or(let left, let right): return holds(left) || holds(right)
        case .not(let inner): return !holds(inner)
        case .comparison(let comparator, let left, let right):
            let (lhs, rhs) = (value(of: left), value(of: right))
            switch comparator {
            case .equal:
                guard let lhs, let rhs else { return false }
                return ExpressionValues.equal(lhs, rhs)
            case .notEqual:
                // A missing operand is "not equal" to anything, even to another missing operand.
                guard let lhs, let rhs else { return true }
                return !ExpressionValues.equal(lhs, rhs)
            case .less, .lessOrEqual, .greater, .greaterOrEqual:
                guard let lhs, let rhs, let order = ExpressionValues.order(lhs, rhs) else { return false }
                switch comparator {
                case .less: return order < 0
                case .lessOrEqual: return order <= 0
                case .greater: return order > 0
                default: return order >= 0
                }
            }
        case .between(let subject, let lower, let upper):
            guard let subject = value(of: subject), let lower = value(of: lower), let upper = value(of: upper),
                  let above = ExpressionValues.order(subject, lower), let below = ExpressionValues.order(subject, upper) else { return false }
            return above >= 0 && below <= 0
        case .membership(let subject, let candidates):
            guard let subject = value(of: subject) else { return false }
            return candidates.contains { candidate in value(of: candidate).map { ExpressionValues.equal(subject, $0) } ?? false }
        case .function(let name, let arguments):
            return function(name, arguments)
        }
    }

    private func function(_ name: String, _ arguments: [ExpressionOperand]) -> Bool {
        switch name {
        case "attribute_exists": return value(of: arguments[0]) != nil
        case "attribute_not_exists": return value(of: arguments[0]) == nil
        case "attribute_type":
            guard let subject = value(of: arguments[0]), case .s(let type)? = value(of: arguments[1]) else { return false }
            return ExpressionValues.typeName(subject) == type
        case "begins_with":
            switch (value(of: arguments[0]), value(of: arguments[1])) {
            case (.s(let subject)?, .s(let prefix)?): return subject.utf8.starts(with: prefix.utf8)
            case (.b(let subject)?, .b(let prefix)?): return subject.starts(with: prefix)
            default: return false
            }
        case "contains":
            guard let subject = value(of: arguments[0]), let element = value(of: arguments[1]) else { return false }
            return ExpressionValues.contains(subject, element)
        default: return false
        }
    }

    func value(of operand: ExpressionOperand) -> AttributeValue? {
        switch operand {
        case .path(let path): return ExpressionValues.resolve(path, in: item)
        case .value(let value): return value
        case .function(let name, let arguments):
            guard name == "size", arguments.count == 1, let subject = value(of: arguments[0]) else { return nil }
            return ExpressionValues.size(of: subject).map { .n(String($0)) }
        }
    }
}

// MARK: - Update expressions

/// A parsed `UpdateExpression`: `SET`, `REMOVE`, `ADD` and `DELETE` clauses applied to an item.
public struct UpdateExpression: Sendable {
    enum SetValue: Sendable {
        case operand(ExpressionOperand)
        case plus(ExpressionOperand, ExpressionOperand)
        case minus(ExpressionOperand, ExpressionOperand)
    }

    enum Action: Sendable {
        case set(DocumentPath, SetValue)
        case remove(DocumentPath)
        case add(DocumentPath, AttributeValue)
        case delete(DocumentPath, AttributeValue)

        var path: DocumentPath {
            switch self {
            case .set(let path, _), .remove(let path), .add(let path, _), .delete(let path, _): path
            }
        }
    }

    let actions: [Action]

    /// Parses and validates `text`, resolving `#name` and `:value` placeholders.
    public init(_ text: String, names: [String: String] = [:], values: [String: AttributeValue] = [:]) throws(ExpressionError) {
        var parser = try ExpressionParser(text, label: "UpdateExpression", names: names, values: values, mode: .update)
        actions = try parser.parseUpdate()
    }

    /// The top-level attributes the actions write, for `UPDATED_OLD` / `UPDATED_NEW` return values.
    public var updatedTopLevelNames: Set<String> { Set(actions.map(\.path.topLevelName)) }

    /// Applies every action to an existing item. All right-hand sides read the item as it was before the update;
    /// list indexes refer to the original positions. On error `item` is left unchanged.
    public func apply(to item: inout [String: AttributeValue]) throws(ExpressionError) {
        try apply(to: &item, itemExists: true)
    }

    /// Applies every action to `item`; for an item that does not exist yet pass its key attributes and
    /// `itemExists: false`, and, as DynamoDB does, `REMOVE` then ignores even paths below missing attributes.
    public func apply(to item: inout [String: AttributeValue], itemExists: Bool) throws(ExpressionError) {
        let original = ConditionEvaluator(item: item)
        var assignments: [(path: DocumentPath, value: AttributeValue)] = []
        var additions: [(path: DocumentPath, value: AttributeValue)] = []
        var deletions: [(path: DocumentPath, value: AttributeValue)] = []
        var removals: [DocumentPath] = []
        for action in actions {
            switch action {
            case .set(let path, let value): assignments.append((path, try Self.evaluate(value, original)))
            case .add(let path, let value): additions.append((path, value))
            case .delete(let path, let value): deletions.append((path, value))
            case .remove(let path): removals.append(path)
            }
        }
        var result = item
        // Sorting makes several appends past the end of one list land in index order, as DynamoDB does.
        for assignment in assignments.sorted(by: { $0.path < $1.path }) {
            try Self.modify(&result, at: assignment.path) { (slot: inout AttributeValue?) throws(ExpressionError) in slot = assignment.value }
        }
        for addition in additions {
            try Self.modify(&result, at: addition.path) { (slot: inout AttributeValue?) throws(ExpressionError) in
                slot = try Self.add(addition.value, to: slot)
            }
        }
        for deletion in deletions {
            try Self.modify(&result, at: deletion.path) { (slot: inout AttributeValue?) throws(ExpressionError) in
                slot = try Self.delete(deletion.value, from: slot)
            }
        }
        // Removing from the end backwards keeps the earlier list indexes pointing at their original elements.
        for path in removals.sorted(by: >) where itemExists {
            try Self.modify(&result, at: path) { (slot: inout AttributeValue?) throws(ExpressionError) in slot = nil }
        }
        item = result
    }

    static func evaluate(_ value: SetValue, _ item: ConditionEvaluator) throws(ExpressionError) -> AttributeValue {
        switch value {
        case .operand(let operand):
            return try self.value(of: operand, item)
        case .plus(let left, let right):
            return .n(try number(left, item).adding(number(right, item)).text)
        case .minus(let left, let right):
            return .n(try number(left, item).subtracting(number(right, item)).text)
        }
    }

    private static func number(_ operand: ExpressionOperand, _ item: ConditionEvaluator) throws(ExpressionError) -> DynamoDBNumber {
        guard case .n(let text) = try value(of: operand, item) else { throw .incorrectOperandType }
        return try DynamoDBNumber(text)
    }

    private static func value(of operand: ExpressionOperand, _ item: ConditionEvaluator) throws(ExpressionError) -> AttributeValue {
        switch operand {
        case .value(let value):
            return value
        case .path:
            guard let value = item.value(of: operand) else { throw .missingAttribute }
            return value
        case .function("if_not_exists", let arguments):
            if let existing = item.value(of: arguments[0]) { return existing }
            return try value(of: arguments[1], item)
        case .function(_, let arguments):  // list_append, the only other function the parser lets through
            let first = try value(of: arguments[0], item)
            let second = try value(of: arguments[1], item)
            guard case .l(let head) = first, case .l(let tail) = second else { throw .incorrectOperandType }
            return .l(head + tail)
        }
    }

    private static func add(_ value: AttributeValue, to existing: AttributeValue?) throws(ExpressionError) -> AttributeValue {
        switch (existing, value) {
        case (nil, .n(let number)): return .n(try DynamoDBNumber(number).text)
        case (nil, _): return value
        case (.n(let left)?, .n(let right)): return .n(try DynamoDBNumber(left).adding(DynamoDBNumber(right)).text)
        case (.ss(let left)?, .ss(let right)): return .ss(left + right.filter { !left.contains($0) })
        case (.bs(let left)?, .bs(let right)): return .bs(left + right.filter { !left.contains($0) })
        case (.ns(let left)?, .ns(let right)):
            return .ns(left + right.filter { candidate in !left.contains { ExpressionValues.sameNumber($0, candidate) } })
        default: throw .incorrectOperandType
        }
    }

    private static func delete(_ value: AttributeValue, from existing: AttributeValue?) throws(ExpressionError) -> AttributeValue? {
        let remaining: AttributeValue
        switch (existing, value) {
        case (nil, _): return nil
        case (.ss(let left)?, .ss(let right)): remaining = .ss(left.filter { !right.contains($0) })
        case (.bs(let left)?, .bs(let right)): remaining = .bs(left.filter { !right.contains($0) })
        case (.ns(let left)?, .ns(let right)):
            remaining = .ns(left.filter { member in !right.contains { ExpressionValues.sameNumber($0, member) } })
        default: throw .incorrectOperandType
        }
        // DynamoDB has no empty sets: deleting the last element removes the attribute.
        return ExpressionValues.size(of: remaining) == 0 ? nil : remaining
    }

    /// Runs `body` on the slot `path` names, creating or deleting it as `body` decides. Every container above the
    /// slot must exist with the right type; a list slot past the end appends.
    static func modify(
        _ item: inout [String: AttributeValue], at path: DocumentPath, _ body: (inout AttributeValue?) throws(ExpressionError) -> Void
    ) throws(ExpressionError) {
        let name = path.topLevelName
        if path.elements.count == 1 {
            var slot = item[name]
            try body(&slot)
            item[name] = slot
            return
        }
        guard var child = item.removeValue(forKey: name) else { throw .invalidDocumentPath }
        defer { item[name] = child }
        try modify(&child, at: path.elements.dropFirst(), body)
    }

    private static func modify(
        _ container: inout AttributeValue, at path: ArraySlice<DocumentPathElement>, _ body: (inout AttributeValue?) throws(ExpressionError) -> Void
    ) throws(ExpressionError) {
        guard let step = path.first else { return }
        let rest = path.dropFirst()
        switch (step, container) {
        case (.name(let key), .m(var map)):
            container = .null  // release the enum's copy so the map is mutated in place
            defer { container = .m(map) }
            if rest.isEmpty {
                var slot = map[key]
                try body(&slot)
                map[key] = slot
            } else {
                guard var child = map.removeValue(forKey: key) else { throw .invalidDocumentPath }
                defer { map[key] = child }
                try modify(&child, at: rest, body)
            }
        case (.index(let index), .l(var list)):
            container = .null
            defer { container = .l(list) }
            if rest.isEmpty {
                var slot: AttributeValue? = index < list.count ? list[index] : nil
                try body(&slot)
                if index < list.count {
                    if let slot { list[index] = slot } else { list.remove(at: index) }
                } else if let slot {
                    list.append(slot)
                }
            } else {
                guard index < list.count else { throw .invalidDocumentPath }
                try modify(&list[index], at: rest, body)
            }
        default:
            throw .invalidDocumentPath
        }
    }
}

// MARK: - Key condition expressions

/// The sort-key half of a `KeyConditionExpression`.
public enum SortCondition: Sendable, Equatable {
    /// `sk = :v`
    case equal(AttributeValue)
    /// `sk < :v`
    case less(AttributeValue)
    /// `sk <= :v`
    case lessOrEqual(AttributeValue)
    /// `sk > :v`
    case greater(AttributeValue)
    /// `sk >= :v`
    case greaterOrEqual(AttributeValue)
    /// `sk BETWEEN :low AND :high` (both bounds included)
    case between(AttributeValue, AttributeValue)
    /// `begins_with(sk, :prefix)`
    case beginsWith(AttributeValue)

    /// Whether a sort-key value satisfies the condition; values of another type never do.
    public func matches(_ value: AttributeValue) -> Bool {
        switch self {
        case .equal(let operand): return Self.compare(value, operand) == 0
        case .less(let operand): return Self.compare(value, operand).map { $0 < 0 } ?? false
        case .lessOrEqual(let operand): return Self.compare(value, operand).map { $0 <= 0 } ?? false
        case .greater(let operand): return Self.compare(value, operand).map { $0 > 0 } ?? false
        case .greaterOrEqual(let operand): return Self.compare(value, operand).map { $0 >= 0 } ?? false
        case .between(let lower, let upper):
            guard let above = Self.compare(value, lower), let below = Self.compare(value, upper) else { return false }
            return above >= 0 && below <= 0
        case .beginsWith(let prefix):
            switch (value, prefix) {
            case (.s(let string), .s(let prefix)): return string.utf8.starts(with: prefix.utf8)
            case (.b(let bytes), .b(let prefix)): return bytes.starts(with: prefix)
            default: return false
            }
        }
    }

    /// Orders two key values as DynamoDB sorts them (numbers by value, strings by UTF-8 bytes, binary by unsigned
    /// bytes): negative, zero or positive; `nil` when they are not both `N`, both `S` or both `B`.
    public static func compare(_ lhs: AttributeValue, _ rhs: AttributeValue) -> Int? {
        ExpressionValues.order(lhs, rhs)
    }
}

/// A parsed `KeyConditionExpression`: equality on the partition key and at most one condition on the sort key.
public struct KeyCondition: Sendable {
    /// The value the partition key must equal.
    public let partitionValue: AttributeValue
    /// The condition on the sort key, if the expression has one.
    public let sortCondition: SortCondition?

    /// Parses `text` and checks it against the key schema of the table or index being queried.
    public init(
        _ text: String, names: [String: String] = [:], values: [String: AttributeValue] = [:], partitionKey: String, sortKey: String?
    ) throws(ExpressionError) {
        var parser = try ExpressionParser(text, label: "KeyConditionExpression", names: names, values: values, mode: .condition)
        var terms: [(name: String, condition: SortCondition)] = []
        try Self.collect(parser.parseCondition(), into: &terms)
        guard terms.count <= 2 else { throw ExpressionError(message: "Conditions can be of length 1 or 2 only") }
        guard let partition = terms.first(where: { $0.name == partitionKey }) else {
            throw ExpressionError(message: "Query condition missed key schema element: \(partitionKey)")
        }
        guard case .equal(let partitionValue) = partition.condition else { throw ExpressionError(message: "Query key condition not supported") }
        self.partitionValue = partitionValue
        guard let other = terms.first(where: { $0.name != partitionKey }) else {
            sortCondition = nil
            return
        }
        guard let sortKey else { throw ExpressionError(message: "Query key condition not supported") }
        guard other.name == sortKey else { throw ExpressionError(message: "Query condition missed key schema element: \(sortKey)") }
        sortCondition = other.condition
    }

    private static func collect(_ node: ConditionNode, into terms: inout [(name: String, condition: SortCondition)]) throws(ExpressionError) {
        func invalidOperator(_ name: String) -> ExpressionError {
            ExpressionError(message: "Invalid operator used in KeyConditionExpression: \(name)")
        }
        func firstOperandError(_ name: String) -> ExpressionError {
            ExpressionError(message: "Invalid condition in KeyConditionExpression: \(name) operator must have the key attribute as its first operand")
        }
        switch node {
        case .and(let left, let right):
            try collect(left, into: &terms)
            try collect(right, into: &terms)
        case .or: throw invalidOperator("OR")
        case .not: throw invalidOperator("NOT")
        case .membership: throw invalidOperator("IN")
        case .comparison(.notEqual, _, _): throw invalidOperator("<>")
        case .function(let name, _) where name != "begins_with": throw invalidOperator(name)
        case .comparison(let comparator, let left, let right):
            let (name, position, operands) = try keyAttribute(in: [left, right], besides: terms)
            let operand = operands[0]
            let condition: SortCondition
            switch position == 0 ? comparator : comparator.swapped {
            case .less: condition = .less(operand)
            case .lessOrEqual: condition = .lessOrEqual(operand)
            case .greater: condition = .greater(operand)
            case .greaterOrEqual: condition = .greaterOrEqual(operand)
            default: condition = .equal(operand)
            }
            terms.append((name, condition))
        case .between(let subject, let lower, let upper):
            guard case .path = subject else { throw firstOperandError("BETWEEN") }
            let (name, _, bounds) = try keyAttribute(in: [subject, lower, upper], besides: terms)
            terms.append((name, .between(bounds[0], bounds[1])))
        case .function(_, let arguments):
            guard case .path = arguments[0] else { throw firstOperandError("begins_with") }
            let (name, _, operands) = try keyAttribute(in: arguments, besides: terms)
            terms.append((name, .beginsWith(operands[0])))
        }
    }

    /// The one key attribute a primitive condition names (not yet named by `terms`), its position, and the
    /// condition's constant operands.
    private static func keyAttribute(
        in operands: [ExpressionOperand], besides terms: [(name: String, condition: SortCondition)]
    ) throws(ExpressionError) -> (String, Int, [AttributeValue]) {
        var attribute: (name: String, position: Int)?
        var constants: [AttributeValue] = []
        for (position, operand) in operands.enumerated() {
            switch operand {
            case .path(let path):
                guard attribute == nil else {
                    throw ExpressionError(message: "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition")
                }
                guard path.elements.count == 1 else {
                    throw ExpressionError(message: "KeyConditionExpressions cannot have conditions on nested attributes")
                }
                attribute = (path.topLevelName, position)
            case .function:
                throw ExpressionError(message: "KeyConditionExpressions cannot contain nested operations")
            case .value(let value):
                constants.append(value)
            }
        }
        guard let attribute else { throw ExpressionError(message: "Invalid condition in KeyConditionExpression: No key attribute specified") }
        if terms.contains(where: { $0.name == attribute.name }) {
            throw ExpressionError(message: "KeyConditionExpressions must only contain one condition per key")
        }
        return (attribute.name, attribute.position, constants)
    }
}

// MARK: - Projection expressions

/// A parsed `ProjectionExpression`: the attributes and nested elements to return.
public struct ProjectionExpression: Sendable {
    struct Node: Sendable {
        var isLeaf = false
        var names: [String: Node] = [:]
        var indexes: [Int: Node] = [:]
    }

    let root: Node

    /// The top-level attributes the projection reads from.
    public var topLevelNames: Set<String> { Set(root.names.keys) }

    /// Parses and validates `text`, resolving `#name` placeholders.
    public init(_ text: String, names: [String: String] = [:]) throws(ExpressionError) {
        var parser = try ExpressionParser(text, label: "ProjectionExpression", names: names, values: [:], mode: .projection)
        var root = Node()
        for path in try parser.parseProjection() {
            Self.insert(path.elements[...], into: &root)
        }
        self.root = root
    }

    private static func insert(_ path: ArraySlice<DocumentPathElement>, into node: inout Node) {
        guard let first = path.first else {
            node.isLeaf = true
            return
        }
        switch first {
        case .name(let name): insert(path.dropFirst(), into: &node.names[name, default: Node()])
        case .index(let index): insert(path.dropFirst(), into: &node.indexes[index, default: Node()])
        }
    }

    /// The item reduced to the projected paths; nested maps keep their shape, and projected list elements keep
    /// their original order (closed up, so `a[0], a[2]` yields a two-element list).
    public func apply(_ item: [String: AttributeValue]) -> [String: AttributeValue] {
        var result: [String: AttributeValue] = [:]
        for (name, node) in root.names {
            if let value = item[name], let projected = Self.project(value, node) { result[name] = projected }
        }
        return result
    }

    private static func project(_ value: AttributeValue, _ node: Node) -> AttributeValue? {
        if node.isLeaf { return value }
        switch value {
        case .m(let map) where !node.names.isEmpty:
            var result: [String: AttributeValue] = [:]
            for (name, child) in node.names {
                if let value = map[name], let projected = project(value, child) { result[name] = projected }
            }
            return result.isEmpty ? nil : .m(result)
        case .l(let list) where !node.indexes.isEmpty:
            let elements = node.indexes.sorted { $0.key < $1.key }.compactMap { index, child in
                index < list.count ? project(list[index], child) : nil
            }
            return elements.isEmpty ? nil : .l(elements)
        default:
            return nil
        }
    }
}

// MARK: - Numbers

/// A DynamoDB number: exact decimal with up to 38 significant digits and a magnitude from 1E-130 to below 1E+126.
public struct DynamoDBNumber: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Set only for values below zero.
    let isNegative: Bool
    /// Significant digits, most significant first, without leading or trailing zeros; empty for zero.
    let digits: [UInt8]
    /// The power of ten of the last digit.
    let scale: Int

    static let overflow = "Number overflow. Attempting to store a number with magnitude larger than supported range"
    static let underflow = "Number underflow. Attempting to store a number with magnitude smaller than supported range"

    /// Parses number text as DynamoDB accepts it (`-1.5`, `+3`, `.5`, `1E+2`, `0001.20`) and rejects numbers
    /// it would not store.
    public init(_ text: String) throws(ExpressionError) {
        guard let number = DynamoDBNumber(parsing: text) else {
            throw ExpressionError(message: "The parameter cannot be converted to a numeric value: \(text)")
        }
        if let problem = number.rangeProblem(fromArithmetic: false) { throw ExpressionError(message: problem) }
        self = number
    }

    /// Parses number syntax without checking DynamoDB's range; `nil` for text that is not a number.
    init?(parsing text: String) {
        var bytes = Array(text.utf8)[...]
        var negative = false
        if let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            negative = sign == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        var mantissa: [UInt8] = []
        var fractionDigits = 0
        var sawPoint = false
        while let byte = bytes.first {
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                mantissa.append(byte - UInt8(ascii: "0"))
                if sawPoint { fractionDigits += 1 }
            } else if byte == UInt8(ascii: "."), !sawPoint {
                sawPoint = true
            } else {
                break
            }
            bytes = bytes.dropFirst()
        }
        guard !mantissa.isEmpty else { return nil }
        var exponent = 0
        if let marker = bytes.first, marker == UInt8(ascii: "e") || marker == UInt8(ascii: "E") {
            bytes = bytes.dropFirst()
            var exponentNegative = false
            if let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
                exponentNegative = sign == UInt8(ascii: "-")
                bytes = bytes.dropFirst()
            }
            guard !bytes.isEmpty else { return nil }
            for byte in bytes {
                guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
                exponent = min(exponent * 10 + Int(byte - UInt8(ascii: "0")), 1_000_000_000)  // far beyond any valid number
            }
            bytes = []
            if exponentNegative { exponent = -exponent }
        }
        guard bytes.isEmpty else { return nil }
        self.init(isNegative: negative, digits: mantissa, scale: exponent - fractionDigits)
    }

    /// Normalises: strips leading and trailing zeros; zero is never negative.
    init(isNegative: Bool, digits: [UInt8], scale: Int) {
        var start = digits.startIndex
        while start < digits.endIndex, digits[start] == 0 { start += 1 }
        var end = digits.endIndex
        var scale = scale
        while end > start, digits[end - 1] == 0 {
            end -= 1
            scale += 1
        }
        if start == end {
            self.isNegative = false
            self.digits = []
            self.scale = 0
        } else {
            self.isNegative = isNegative
            self.digits = Array(digits[start..<end])
            self.scale = scale
        }
    }

    /// Validates and normalises number text the way DynamoDB stores it: plain notation, no trailing zeros
    /// (`"1E+2"` → `"100"`, `"-0"` → `"0"`, `"1.50"` → `"1.5"`).
    public static func normalize(_ text: String) throws(ExpressionError) -> String {
        try DynamoDBNumber(text).text
    }

    /// `value` with every number in it (nested, or in a number set) validated and normalised as DynamoDB stores it.
    public static func normalizingNumbers(in value: AttributeValue) throws(ExpressionError) -> AttributeValue {
        switch value {
        case .n(let text):
            return .n(try normalize(text))
        case .ns(let members):
            var normalised: [String] = []
            for member in members { normalised.append(try normalize(member)) }
            return .ns(normalised)
        case .l(let elements):
            var normalised: [AttributeValue] = []
            for element in elements { normalised.append(try normalizingNumbers(in: element)) }
            return .l(normalised)
        case .m(let members):
            var normalised: [String: AttributeValue] = [:]
            for (name, member) in members { normalised[name] = try normalizingNumbers(in: member) }
            return .m(normalised)
        case .s, .b, .bool, .null, .ss, .bs:
            return value
        }
    }

    /// The number in DynamoDB's plain notation.
    public var text: String {
        guard !digits.isEmpty else { return "0" }
        let significant = String(decoding: digits.map { $0 + UInt8(ascii: "0") }, as: UTF8.self)
        let sign = isNegative ? "-" : ""
        if scale >= 0 { return sign + significant + String(repeating: "0", count: scale) }
        let point = digits.count + scale
        if point > 0 {
            let split = significant.utf8.index(significant.utf8.startIndex, offsetBy: point)
            return sign + String(significant[..<split]) + "." + String(significant[split...])
        }
        return sign + "0." + String(repeating: "0", count: -point) + significant
    }

    /// The number in DynamoDB's plain notation.
    public var description: String { text }

    /// The exact sum, or DynamoDB's error when it cannot be stored.
    public func adding(_ other: DynamoDBNumber) throws(ExpressionError) -> DynamoDBNumber {
        try Self.sum(self, other).checkedArithmeticResult()
    }

    /// The exact difference, or DynamoDB's error when it cannot be stored.
    public func subtracting(_ other: DynamoDBNumber) throws(ExpressionError) -> DynamoDBNumber {
        try Self.sum(self, DynamoDBNumber(isNegative: !other.isNegative, digits: other.digits, scale: other.scale)).checkedArithmeticResult()
    }

    /// Numeric order.
    public static func < (lhs: DynamoDBNumber, rhs: DynamoDBNumber) -> Bool {
        compare(lhs, rhs) < 0
    }

    static func compare(_ lhs: DynamoDBNumber, _ rhs: DynamoDBNumber) -> Int {
        if lhs.isNegative != rhs.isNegative { return lhs.isNegative ? -1 : 1 }
        let magnitude = compareMagnitudes(lhs, rhs)
        return lhs.isNegative ? -magnitude : magnitude
    }

    private static func compareMagnitudes(_ lhs: DynamoDBNumber, _ rhs: DynamoDBNumber) -> Int {
        if lhs.digits.isEmpty || rhs.digits.isEmpty { return (lhs.digits.isEmpty ? 0 : 1) - (rhs.digits.isEmpty ? 0 : 1) }
        let (leftExponent, rightExponent) = (lhs.digits.count + lhs.scale, rhs.digits.count + rhs.scale)
        if leftExponent != rightExponent { return leftExponent < rightExponent ? -1 : 1 }
        for position in 0..<max(lhs.digits.count, rhs.digits.count) {
            let left = position < lhs.digits.count ? lhs.digits[position] : 0
            let right = position < rhs.digits.count ? rhs.digits[position] : 0
            if left != right { return left < right ? -1 : 1 }
        }
        return 0
    }

    private static func sum(_ lhs: DynamoDBNumber, _ rhs: DynamoDBNumber) -> DynamoDBNumber {
        if lhs.digits.isEmpty { return rhs }
        if rhs.digits.isEmpty { return lhs }
        let scale = min(lhs.scale, rhs.scale)
        let left = lhs.digits + [UInt8](repeating: 0, count: lhs.scale - scale)
        let right = rhs.digits + [UInt8](repeating: 0, count: rhs.scale - scale)
        if lhs.isNegative == rhs.isNegative {
            return DynamoDBNumber(isNegative: lhs.isNegative, digits: addDigits(left, right), scale: scale)
        }
        // Neither operand has leading zeros, so the longer digit string is the larger magnitude.
        let leftIsLarger = left.count != right.count ? left.count > right.count : left.lexicographicallyPrecedes(right) == false
        return leftIsLarger
            ? DynamoDBNumber(isNegative: lhs.isNegative, digits: subtractDigits(left, right), scale: scale)
            : DynamoDBNumber(isNegative: rhs.isNegative, digits: subtractDigits(right, left), scale: scale)
    }

    private static func addDigits(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: max(left.count, right.count) + 1)
        var carry: UInt8 = 0
        for offset in 0..<(result.count) {
            let a = offset < left.count ? left[left.count - 1 - offset] : 0
            let b = offset < right.count ? right[right.count - 1 - offset] : 0
            let total = a + b + carry
            result[result.count - 1 - offset] = total % 10
            carry = total / 10
        }
        return result
    }

    /// `larger - smaller`, both as unsigned digit strings.
    private static func subtractDigits(_ larger: [UInt8], _ smaller: [UInt8]) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: larger.count)
        var borrow = 0
        for offset in 0..<larger.count {
            var difference = Int(larger[larger.count - 1 - offset]) - borrow - (offset < smaller.count ? Int(smaller[smaller.count - 1 - offset]) : 0)
            borrow = difference < 0 ? 1 : 0
            if difference < 0 { difference += 10 }
            result[larger.count - 1 - offset] = UInt8(difference)
        }
        return result
    }

    /// DynamoDB's message when the number cannot be stored, if it cannot.
    func rangeProblem(fromArithmetic: Bool) -> String? {
        guard !digits.isEmpty else { return nil }
        let magnitude = digits.count - 1 + scale
        if magnitude > 125 { return Self.overflow }
        if magnitude < -130 { return Self.underflow }
        if digits.count > 38 {
            // DynamoDB reports an imprecise arithmetic result (e.g. 1E+50 + 1) as an overflow.
            return fromArithmetic ? Self.overflow : "Attempting to store more than 38 significant digits in a Number"
        }
        return nil
    }

    private func checkedArithmeticResult() throws(ExpressionError) -> DynamoDBNumber {
        if let problem = rangeProblem(fromArithmetic: true) { throw ExpressionError(message: problem) }
        return self
    }
}

// MARK: - Attribute value semantics

/// DynamoDB's comparison rules for attribute values.
enum ExpressionValues {
    static func typeName(_ value: AttributeValue) -> String { value.typeName }

    static func resolve(_ path: DocumentPath, in item: [String: AttributeValue]?) -> AttributeValue? {
        guard var value = item?[path.topLevelName] else { return nil }
        for element in path.elements.dropFirst() {
            switch (element, value) {
            case (.name(let key), .m(let map)):
                guard let next = map[key] else { return nil }
                value = next
            case (.index(let index), .l(let list)):
                guard index < list.count else { return nil }
                value = list[index]
            default:
                return nil
            }
        }
        return value
    }

    /// Equality as `=` sees it: same type and same value; numbers by value, sets regardless of order.
    static func equal(_ lhs: AttributeValue, _ rhs: AttributeValue) -> Bool {
        switch (lhs, rhs) {
        case (.n(let left), .n(let right)): return sameNumber(left, right)
        case (.ss(let left), .ss(let right)): return Set(left) == Set(right)
        case (.bs(let left), .bs(let right)): return Set(left) == Set(right)
        case (.ns(let left), .ns(let right)):
            return left.count == right.count
                && left.allSatisfy { member in right.contains { sameNumber($0, member) } }
                && right.allSatisfy { member in left.contains { sameNumber($0, member) } }
        case (.l(let left), .l(let right)):
            return left.count == right.count && zip(left, right).allSatisfy { equal($0, $1) }
        case (.m(let left), .m(let right)):
            return left.count == right.count && left.allSatisfy { key, value in right[key].map { equal(value, $0) } ?? false }
        default:
            return lhs == rhs
        }
    }

    static func sameNumber(_ lhs: String, _ rhs: String) -> Bool {
        guard let left = DynamoDBNumber(parsing: lhs), let right = DynamoDBNumber(parsing: rhs) else { return lhs == rhs }
        return left == right
    }

    /// The order of two scalars of the same type (`N`, `S` or `B`); `nil` otherwise.
    static func order(_ lhs: AttributeValue, _ rhs: AttributeValue) -> Int? {
        switch (lhs, rhs) {
        case (.n(let left), .n(let right)):
            guard let left = DynamoDBNumber(parsing: left), let right = DynamoDBNumber(parsing: right) else { return nil }
            return DynamoDBNumber.compare(left, right)
        case (.s(let left), .s(let right)):
            return compareBytes(left.utf8, right.utf8)
        case (.b(let left), .b(let right)):
            return compareBytes(left, right)
        default:
            return nil
        }
    }

    private static func compareBytes(_ lhs: some Sequence<UInt8>, _ rhs: some Sequence<UInt8>) -> Int {
        var left = lhs.makeIterator()
        var right = rhs.makeIterator()
        while true {
            switch (left.next(), right.next()) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case (let a?, let b?) where a != b: return a < b ? -1 : 1
            default: continue
            }
        }
    }

    /// `contains(subject, element)`: substring of a string or binary, member of a set, element of a list.
    static func contains(_ subject: AttributeValue, _ element: AttributeValue) -> Bool {
        switch (subject, element) {
        case (.s(let string), .s(let part)): return containsBytes(Array(string.utf8), Array(part.utf8))
        case (.b(let bytes), .b(let part)): return containsBytes(bytes, part)
        case (.ss(let set), .s(let member)): return set.contains(member)
        case (.bs(let set), .b(let member)): return set.contains(member)
        case (.ns(let set), .n(let member)): return set.contains { sameNumber($0, member) }
        case (.l(let list), _): return list.contains { equal($0, element) }
        default: return false
        }
    }

    private static func containsBytes(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        guard needle.count <= haystack.count else { return false }
        return (0...(haystack.count - needle.count)).contains { start in haystack[start..<(start + needle.count)].elementsEqual(needle) }
    }

    /// `size()`: UTF-16 code units of a string (as DynamoDB counts), bytes of a binary, elements of a set, list or map.
    static func size(of value: AttributeValue) -> Int? {
        switch value {
        case .s(let string): string.utf16.count
        case .b(let bytes): bytes.count
        case .ss(let set): set.count
        case .ns(let set): set.count
        case .bs(let set): set.count
        case .l(let list): list.count
        case .m(let map): map.count
        case .n, .bool, .null: nil
        }
    }

    /// The value as DynamoDB prints it inside `AttributeValue: {…}` in error messages.
    static func render(_ value: AttributeValue) -> String {
        switch value {
        case .s(let string): "S:\(string)"
        case .n(let number): "N:\(number)"
        case .b(let bytes): "B:\(Base64.encode(bytes))"
        default: typeName(value)
        }
    }
}

// MARK: - ExpressionLexer

/// One token of an expression, with its span in the source characters.
struct ExpressionToken: Sendable {
    enum Kind: Sendable, Equatable {
        /// A letter followed by letters, digits and `_`: an attribute name, function name or keyword.
        case word
        /// `#name`
        case name
        /// `:value`
        case value
        /// An unsigned integer literal.
        case number
        /// Punctuation, an operator, or any single unexpected character.
        case symbol
        /// The end of the expression.
        case end
    }

    let kind: Kind
    let text: String
    let start: Int
    let end: Int

    func isSymbol(_ symbol: String) -> Bool { kind == .symbol && text == symbol }
    func isWord(_ keyword: String) -> Bool { kind == .word && text.uppercased() == keyword }
}

enum ExpressionLexer {
    /// Expressions already read: an application sends the same few texts over and over.
    private static let cache = Mutex<[String: (source: [Character], tokens: [ExpressionToken])]>([:])
    private static let cacheCapacity = 512

    /// The `#name` and `:value` placeholders `text` uses, remembered as its tokens are.
    static func placeholders(_ text: String) -> Set<String> {
        if let known = placeholderCache.withLock({ $0[text] }) { return known }
        var used = Set<String>()
        for token in lexed(text).tokens where token.kind == .name || token.kind == .value { used.insert(token.text) }
        placeholderCache.withLock { cache in
            if cache.count >= cacheCapacity { cache.removeAll(keepingCapacity: true) }
            cache[text] = used
        }
        return used
    }

    private static let placeholderCache = Mutex<[String: Set<String>]>([:])

    /// The characters and tokens of `text`, from the cache when it was read before.
    static func lexed(_ text: String) -> (source: [Character], tokens: [ExpressionToken]) {
        if let known = cache.withLock({ $0[text] }) { return known }
        let source = Array(text)
        let lexed = (source, tokens(of: source))
        cache.withLock { cache in
            if cache.count >= cacheCapacity { cache.removeAll(keepingCapacity: true) }
            cache[text] = lexed
        }
        return lexed
    }

    static func tokens(of source: [Character]) -> [ExpressionToken] {
        var tokens: [ExpressionToken] = []
        var position = 0
        while position < source.count {
            let character = source[position]
            if character.isExpressionWhitespace {
                position += 1
                continue
            }
            let start = position
            position += 1
            let kind: ExpressionToken.Kind
            if character.isASCIILetter {
                while position < source.count, source[position].isWordPart { position += 1 }
                kind = .word
            } else if character.isASCIIDigit {
                while position < source.count, source[position].isASCIIDigit { position += 1 }
                kind = .number
            } else if character == "#" || character == ":", position < source.count, source[position].isWordPart {
                while position < source.count, source[position].isWordPart { position += 1 }
                kind = character == "#" ? .name : .value
            } else {
                if character == "<" || character == ">", position < source.count,
                   source[position] == "=" || (character == "<" && source[position] == ">") {
                    position += 1
                }
                kind = .symbol
            }
            tokens.append(ExpressionToken(kind: kind, text: String(source[start..<position]), start: start, end: position))
        }
        tokens.append(ExpressionToken(kind: .end, text: "<EOF>", start: source.count, end: source.count))
        return tokens
    }
}

fileprivate extension Character {
    var isExpressionWhitespace: Bool { self == " " || self == "\t" || self == "\n" || self == "\r" || self == "\r\n" }
    var isASCIILetter: Bool { isASCII && isLetter }
    var isASCIIDigit: Bool { isASCII && isNumber }
    var isWordPart: Bool { isASCIILetter || isASCIIDigit || self == "_" }
}

// MARK: - ExpressionParser

/// The semantic problems DynamoDB reports once an expression has parsed; each parser reports the first found of
/// the highest-priority kind, in DynamoDB's order.
enum ExpressionProblem: Hashable {
    case redundantParentheses, unknownFunction, misusedFunction, reservedWord, section
    case undefinedPlaceholder, undefinedName, undefinedValue, pathOverlap, pathConflict
    case operandCount, distinctOperands, operandType, actionOperand, functionOperand

    static let conditionOrder: [ExpressionProblem] = [
        .redundantParentheses, .unknownFunction, .misusedFunction, .reservedWord, .undefinedPlaceholder, .operandCount, .distinctOperands, .operandType,
    ]
    static let updateOrder: [ExpressionProblem] = [
        .reservedWord, .unknownFunction, .section, .undefinedName, .undefinedValue, .pathOverlap, .pathConflict, .actionOperand, .functionOperand,
    ]
    static let projectionOrder: [ExpressionProblem] = [.reservedWord, .undefinedName, .pathOverlap, .pathConflict]
}

/// A recursive-descent parser over DynamoDB's expression grammars.
struct ExpressionParser {
    enum Mode { case condition, update, projection }

    /// A parsed piece of a condition: a condition proper, or an operand that a comparison may still follow.
    enum Parsed {
        case condition(ConditionNode, parenthesized: Bool)
        case operand(ExpressionOperand, parenthesized: Bool)

        var isParenthesized: Bool {
            switch self {
            case .condition(_, let parenthesized), .operand(_, let parenthesized): parenthesized
            }
        }

        var inParentheses: Parsed {
            switch self {
            case .condition(let node, _): .condition(node, parenthesized: true)
            case .operand(let operand, _): .operand(operand, parenthesized: true)
            }
        }
    }

    static let conditionFunctions = ["attribute_exists": 1, "attribute_not_exists": 1, "attribute_type": 2, "begins_with": 2, "contains": 2, "size": 1]
    static let updateFunctions = ["if_not_exists": 2, "list_append": 2]
    static let attributeTypes: Set<String> = ["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"]

    let source: [Character]
    let tokens: [ExpressionToken]
    let label: String
    let names: [String: String]
    let values: [String: AttributeValue]
    let mode: Mode
    var position = 0
    var problems: [ExpressionProblem: String] = [:]
    var topLevelNames: Set<String> = []

    init(_ text: String, label: String, names: [String: String], values: [String: AttributeValue], mode: Mode) throws(ExpressionError) {
        (source, tokens) = ExpressionLexer.lexed(text)
        guard !source.allSatisfy(\.isExpressionWhitespace) else {
            throw ExpressionError(message: "Invalid \(label): The expression can not be empty;")
        }
        self.label = label
        self.names = names
        self.values = values
        self.mode = mode
    }

    // MARK: Tokens and errors

    var current: ExpressionToken { tokens[position] }

    func peek() -> ExpressionToken { tokens[min(position + 1, tokens.count - 1)] }

    mutating func advance() {
        if position < tokens.count - 1 { position += 1 }
    }

    mutating func skip(_ symbol: String) -> Bool {
        guard current.isSymbol(symbol) else { return false }
        advance()
        return true
    }

    mutating func expect(_ symbol: String) throws(ExpressionError) {
        guard skip(symbol) else { throw syntaxError() }
    }

    /// DynamoDB's syntax error: the offending token, and the source from the token before it to the token after it.
    func syntaxError() -> ExpressionError {
        let token = current
        let neighbours = tokens[max(position - 1, 0)...min(position + 1, tokens.count - 1)].filter { $0.kind != .end }
        let near = neighbours.isEmpty ? "" : String(source[neighbours[0].start..<neighbours.map(\.end).max()!])
        return ExpressionError(message: "Invalid \(label): Syntax error; token: \"\(token.text)\", near: \"\(near)\"")
    }

    mutating func note(_ problem: ExpressionProblem, _ message: String) {
        if problems[problem] == nil { problems[problem] = message }
    }

    func firstProblem(in order: [ExpressionProblem]) -> ExpressionError? {
        order.lazy.compactMap { problems[$0] }.first.map { ExpressionError(message: "Invalid \(label): \($0)") }
    }

    func isKeyword(_ token: ExpressionToken) -> Bool {
        guard token.kind == .word else { return false }
        switch mode {
        case .condition: return ["AND", "OR", "NOT", "BETWEEN", "IN"].contains(token.text.uppercased())
        case .update: return ["SET", "REMOVE", "ADD", "DELETE"].contains(token.text.uppercased())
        case .projection: return false
        }
    }

    // MARK: Paths and placeholders

    mutating func parsePath() throws(ExpressionError) -> DocumentPath {
        var elements = [try parsePathName()]
        while true {
            if skip(".") {
                elements.append(try parsePathName())
            } else if skip("[") {
                guard current.kind == .number, let index = Int(current.text) else { throw syntaxError() }
                advance()
                try expect("]")
                elements.append(.index(index))
            } else {
                break
            }
        }
        let path = DocumentPath(elements: elements)
        topLevelNames.insert(path.topLevelName)
        return path
    }

    private mutating func parsePathName() throws(ExpressionError) -> DocumentPathElement {
        let token = current
        switch token.kind {
        case .word where !isKeyword(token):
            if DynamoDBReservedWords.all.contains(token.text.uppercased()) {
                note(.reservedWord, "Attribute name is a reserved keyword; reserved keyword: \(token.text)")
            }
            advance()
            return .name(token.text)
        case .name:
            advance()
            guard let name = names[token.text] else {
                note(mode == .condition ? .undefinedPlaceholder : .undefinedName,
                     "An expression attribute name used in the document path is not defined; attribute name: \(token.text)")
                return .name(token.text)
            }
            return .name(name)
        default:
            throw syntaxError()
        }
    }

    mutating func parseValuePlaceholder() throws(ExpressionError) -> AttributeValue {
        let token = current
        guard token.kind == .value else { throw syntaxError() }
        advance()
        guard let value = values[token.text] else {
            note(mode == .condition ? .undefinedPlaceholder : .undefinedValue,
                 "An expression attribute value used in expression is not defined; attribute value: \(token.text)")
            return .null
        }
        return value
    }

    // MARK: Operands

    /// An operand without surrounding parentheses: a path, a `:value`, or a function call.
    mutating func parseOperand() throws(ExpressionError) -> ExpressionOperand {
        let token = current
        switch token.kind {
        case .value:
            return .value(try parseValuePlaceholder())
        case .word where !isKeyword(token) && peek().isSymbol("("):
            return try parseFunctionCall()
        default:
            return .path(try parsePath())
        }
    }

    /// An operand, possibly in parentheses.
    mutating func parseParenthesizedOperand() throws(ExpressionError) -> (operand: ExpressionOperand, parenthesized: Bool) {
        guard skip("(") else { return (try parseOperand(), false) }
        let inner = try parseParenthesizedOperand()
        try expect(")")
        if inner.parenthesized { note(.redundantParentheses, "The expression has redundant parentheses;") }
        return (inner.operand, true)
    }

    private mutating func parseFunctionCall() throws(ExpressionError) -> ExpressionOperand {
        let name = current.text
        advance()
        try expect("(")
        var arguments = [try parseParenthesizedOperand().operand]
        while skip(",") { arguments.append(try parseParenthesizedOperand().operand) }
        try expect(")")
        if mode == .update { checkUpdateFunction(name, arguments) } else { checkConditionFunction(name, arguments) }
        return .function(name, arguments)
    }

    /// The type of a constant operand, or of a function whose result type is known.
    private func staticType(_ operand: ExpressionOperand) -> String? {
        switch operand {
        case .value(let value): ExpressionValues.typeName(value)
        case .function("size", _): "N"
        default: nil
        }
    }

    private static func notAllowed(_ function: String) -> String {
        "The function is not allowed to be used this way in an expression; function: \(function)"
    }

    private static func incorrectOperandCount(_ function: String, _ count: Int) -> String {
        "Incorrect number of operands for operator or function; operator or function: \(function), number of operands: \(count)"
    }

    private static func incorrectOperandType(_ function: String, _ type: String) -> String {
        "Incorrect operand type for operator or function; operator or function: \(function), operand type: \(type)"
    }

    // MARK: Condition grammar

    /// condition ::= or-condition EOF
    mutating func parseCondition() throws(ExpressionError) -> ConditionNode {
        let node = try requireCondition(parseOr())
        guard current.kind == .end else { throw syntaxError() }
        if let problem = firstProblem(in: ExpressionProblem.conditionOrder) { throw problem }
        return node
    }

    private mutating func parseOr() throws(ExpressionError) -> Parsed {
        var left = try parseAnd()
        while current.isWord("OR") {
            let lhs = try requireCondition(left)
            advance()
            let rhs = try requireCondition(parseAnd())
            left = .condition(.or(lhs, rhs), parenthesized: false)
        }
        return left
    }

    private mutating func parseAnd() throws(ExpressionError) -> Parsed {
        var left = try parseNot()
        while current.isWord("AND") {
            let lhs = try requireCondition(left)
            advance()
            let rhs = try requireCondition(parseNot())
            left = .condition(.and(lhs, rhs), parenthesized: false)
        }
        return left
    }

    private mutating func parseNot() throws(ExpressionError) -> Parsed {
        guard current.isWord("NOT") else { return try parseComparison() }
        advance()
        return .condition(.not(try requireCondition(parseNot())), parenthesized: false)
    }

    private mutating func parseComparison() throws(ExpressionError) -> Parsed {
        let left = try parsePrimary()
        let isComparison = ExpressionComparator(current) != nil || current.isWord("BETWEEN") || current.isWord("IN")
        guard isComparison else { return left }
        guard case .operand(let subject, _) = left else { throw syntaxError() }
        if let comparator = ExpressionComparator(current) {
            advance()
            let operand = try parseParenthesizedOperand().operand
            checkComparison(comparator, subject, operand)
            return .condition(.comparison(comparator, subject, operand), parenthesized: false)
        }
        if current.isWord("BETWEEN") {
            advance()
            let lower = try parseParenthesizedOperand().operand
            guard current.isWord("AND") else { throw syntaxError() }
            advance()
            let upper = try parseParenthesizedOperand().operand
            checkBetween(subject, lower, upper)
            return .condition(.between(subject, lower, upper), parenthesized: false)
        }
        advance()  // IN
        try expect("(")
        var candidates = [try parseParenthesizedOperand().operand]
        while skip(",") { candidates.append(try parseParenthesizedOperand().operand) }
        try expect(")")
        checkMembership(subject, candidates)
        return .condition(.membership(subject, candidates), parenthesized: false)
    }

    private mutating func parsePrimary() throws(ExpressionError) -> Parsed {
        guard skip("(") else { return .operand(try parseOperand(), parenthesized: false) }
        let inner = try parseOr()
        try expect(")")
        if inner.isParenthesized { note(.redundantParentheses, "The expression has redundant parentheses;") }
        return inner.inParentheses
    }

    /// A condition where the grammar needs one; a bare path or value there is a syntax error at the next token.
    private mutating func requireCondition(_ parsed: Parsed) throws(ExpressionError) -> ConditionNode {
        switch parsed {
        case .condition(let node, _):
            return node
        case .operand(.function(let name, let arguments), _):
            if name == "size" { note(.misusedFunction, Self.notAllowed(name)) }
            return .function(name, arguments)
        case .operand:
            throw syntaxError()
        }
    }

    private mutating func checkConditionFunction(_ name: String, _ arguments: [ExpressionOperand]) {
        guard let arity = Self.conditionFunctions[name] else {
            if Self.updateFunctions[name] != nil {
                note(.misusedFunction, Self.notAllowed(name))
            } else {
                note(.unknownFunction, "Invalid function name; function: \(name)")
            }
            return
        }
        noteMisusedFunctions(arguments)
        guard arguments.count == arity else {
            note(.operandCount, Self.incorrectOperandCount(name, arguments.count))
            return
        }
        checkDistinct(name, arguments)
        switch name {
        case "attribute_exists", "attribute_not_exists":
            if case .path = arguments[0] { break }
            note(.operandType, "Operator or function requires a document path; operator or function: \(name)")
        case "begins_with":
            if let type = arguments.lazy.compactMap(staticType).first(where: { $0 != "S" && $0 != "B" }) {
                note(.operandType, Self.incorrectOperandType(name, type))
            }
        case "attribute_type":
            let type = staticType(arguments[1])
            if type != "S" {
                note(.operandType, Self.incorrectOperandType(name, type ?? "{NS,SS,L,BS,N,M,B,BOOL,NULL,S}"))
            } else if case .value(.s(let typeName)) = arguments[1], !Self.attributeTypes.contains(typeName) {
                note(.operandType, "Invalid attribute type name found; type: \(typeName), valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}")
            }
        case "size":
            if let type = staticType(arguments[0]), ["N", "BOOL", "NULL"].contains(type) {
                note(.operandType, Self.incorrectOperandType(name, type))
            }
        default:
            break
        }
    }

    /// Only `size()` yields a value; any other function inside an operand is misplaced.
    private mutating func noteMisusedFunctions(_ operands: [ExpressionOperand]) {
        for case .function(let name, _) in operands where name != "size" {
            note(.misusedFunction, Self.notAllowed(name))
        }
    }

    private mutating func checkDistinct(_ operation: String, _ operands: [ExpressionOperand]) {
        guard operands.count == 2, case .path(let first) = operands[0], case .path(let second) = operands[1], first == second else { return }
        note(.distinctOperands,
             "The first operand must be distinct from the remaining operands for this operator or function; operator: \(operation), first operand: \(first)")
    }

    private mutating func checkComparison(_ comparator: ExpressionComparator, _ left: ExpressionOperand, _ right: ExpressionOperand) {
        noteMisusedFunctions([left, right])
        checkDistinct(comparator.rawValue, [left, right])
        guard comparator.isOrdering else { return }
        for case .value(let value) in [left, right] where ExpressionValues.order(value, value) == nil {
            note(.operandType, Self.incorrectOperandType(comparator.rawValue, ExpressionValues.typeName(value)))
        }
    }

    private mutating func checkBetween(_ subject: ExpressionOperand, _ lower: ExpressionOperand, _ upper: ExpressionOperand) {
        noteMisusedFunctions([subject, lower, upper])
        for case .value(let value) in [subject, lower, upper] where ExpressionValues.order(value, value) == nil {
            note(.operandType, Self.incorrectOperandType("BETWEEN", ExpressionValues.typeName(value)))
        }
        guard case .value(let low) = lower, case .value(let high) = upper else { return }
        let bounds = "lower bound operand: AttributeValue: {\(ExpressionValues.render(low))}, "
            + "upper bound operand: AttributeValue: {\(ExpressionValues.render(high))}"
        if ExpressionValues.typeName(low) != ExpressionValues.typeName(high) {
            note(.operandType, "The BETWEEN operator requires same data type for lower and upper bounds; \(bounds)")
        } else if let order = ExpressionValues.order(low, high), order > 0 {
            note(.operandType, "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; \(bounds)")
        }
    }

    private mutating func checkMembership(_ subject: ExpressionOperand, _ candidates: [ExpressionOperand]) {
        noteMisusedFunctions([subject] + candidates)
        if candidates.count + 1 > 100 {
            note(.operandCount, "The IN operator is provided with too many operands; number of operands: \(candidates.count + 1)")
        }
    }

    // MARK: Update grammar

    /// update ::= clause+ EOF; clause ::= SET set-action, … | REMOVE path, … | ADD path :value, … | DELETE path :value, …
    mutating func parseUpdate() throws(ExpressionError) -> [UpdateExpression.Action] {
        var actions: [UpdateExpression.Action] = []
        var clauses: Set<String> = []
        repeat {
            let clause = current.text.uppercased()
            guard isKeyword(current) else { throw syntaxError() }
            advance()
            if !clauses.insert(clause).inserted {
                note(.section, "The \"\(clause)\" section can only be used once in an update expression;")
            }
            repeat {
                actions.append(try parseAction(clause))
            } while skip(",")
        } while current.kind != .end
        checkOverlaps(actions.map(\.path))
        if let problem = firstProblem(in: ExpressionProblem.updateOrder) { throw problem }
        return actions
    }

    private mutating func parseAction(_ clause: String) throws(ExpressionError) -> UpdateExpression.Action {
        let path = try parsePath()
        switch clause {
        case "SET":
            try expect("=")
            return .set(path, try parseSetValue())
        case "REMOVE":
            return .remove(path)
        default:
            let value = try parseValuePlaceholder()
            let typeNames = ["S": "STRING", "N": "NUMBER", "B": "BINARY", "NULL": "NULL", "BOOL": "BOOLEAN", "L": "LIST", "M": "MAP"]
            if let typeName = typeNames[ExpressionValues.typeName(value)], !(clause == "ADD" && typeName == "NUMBER") {
                note(.actionOperand, "Incorrect operand type for operator or function; operator: \(clause), operand type: \(typeName)")
            }
            return clause == "ADD" ? .add(path, value) : .delete(path, value)
        }
    }

    /// set-value ::= operand | operand + operand | operand - operand, optionally in parentheses.
    private mutating func parseSetValue() throws(ExpressionError) -> UpdateExpression.SetValue {
        guard skip("(") else { return try parseArithmetic(parseParenthesizedOperand().operand) }
        let inner = try parseArithmetic(parseParenthesizedOperand().operand)
        try expect(")")
        guard case .operand(let operand) = inner else { return inner }
        return try parseArithmetic(operand)  // "(a) + b": the parentheses held just the first operand
    }

    private mutating func parseArithmetic(_ left: ExpressionOperand) throws(ExpressionError) -> UpdateExpression.SetValue {
        for symbol in ["+", "-"] where current.isSymbol(symbol) {
            advance()
            let right = try parseParenthesizedOperand().operand
            if let type = [left, right].lazy.compactMap(immediateType).first(where: { $0 != "N" }) {
                note(.functionOperand, Self.incorrectOperandType(symbol, type))
            }
            return symbol == "+" ? .plus(left, right) : .minus(left, right)
        }
        return .operand(left)
    }

    private func immediateType(_ operand: ExpressionOperand) -> String? {
        guard case .value(let value) = operand else { return nil }
        return ExpressionValues.typeName(value)
    }

    private mutating func checkUpdateFunction(_ name: String, _ arguments: [ExpressionOperand]) {
        guard let arity = Self.updateFunctions[name] else {
            if Self.conditionFunctions[name] != nil {
                note(.functionOperand, Self.notAllowed(name))
            } else {
                note(.unknownFunction, "Invalid function name; function: \(name)")
            }
            return
        }
        guard arguments.count == arity else {
            note(.functionOperand, Self.incorrectOperandCount(name, arguments.count))
            return
        }
        if name == "if_not_exists" {
            if case .path = arguments[0] { return }
            note(.functionOperand, "Operator or function requires a document path; operator or function: \(name)")
            return
        }
        for argument in arguments {
            if case .function("list_append", _) = argument {
                note(.functionOperand, Self.notAllowed(name))
            } else if let type = immediateType(argument), type != "L" {
                note(.functionOperand, Self.incorrectOperandType(name, type))
            }
        }
    }

    /// DynamoDB refuses two paths where one contains the other ("overlap"), or where one indexes a list and the
    /// other names a map member at the same place ("conflict").
    private mutating func checkOverlaps(_ paths: [DocumentPath]) {
        for (position, path) in paths.enumerated() {
            for earlier in paths[..<position] {
                var related = true
                for (left, right) in zip(earlier.elements, path.elements) {
                    switch (left, right) {
                    case (.name, .name), (.index, .index):
                        if left != right { related = false }
                    default:
                        note(.pathConflict,
                             "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: \(earlier), path two: \(path)")
                        related = false
                    }
                    if !related { break }
                }
                if related {
                    note(.pathOverlap,
                         "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: \(earlier), path two: \(path)")
                }
            }
        }
    }

    // MARK: Projection grammar

    /// projection ::= path (, path)* EOF
    mutating func parseProjection() throws(ExpressionError) -> [DocumentPath] {
        var paths = [try parsePath()]
        while skip(",") { paths.append(try parsePath()) }
        guard current.kind == .end else { throw syntaxError() }
        checkOverlaps(paths)
        if let problem = firstProblem(in: ExpressionProblem.projectionOrder) { throw problem }
        return paths
    }
}

// MARK: - Reserved words

/// DynamoDB's reserved words, which may not appear as bare attribute names in any expression.
enum DynamoDBReservedWords {
    static let all: Set<String> = Set(
        """
        ABORT ABSOLUTE ACTION ADD AFTER AGENT AGGREGATE ALL ALLOCATE ALTER ANALYZE AND ANY ARCHIVE ARE ARRAY AS ASC ASCII
        ASENSITIVE ASSERTION ASYMMETRIC AT ATOMIC ATTACH ATTRIBUTE AUTH AUTHORIZATION AUTHORIZE AUTO AVG BACK BACKUP BASE
        BATCH BEFORE BEGIN BETWEEN BIGINT BINARY BIT BLOB BLOCK BOOLEAN BOTH BREADTH BUCKET BULK BY BYTE CALL CALLED
        CALLING CAPACITY CASCADE CASCADED CASE CAST CATALOG CHAR CHARACTER CHECK CLASS CLOB CLOSE CLUSTER CLUSTERED
        CLUSTERING CLUSTERS COALESCE COLLATE COLLATION COLLECTION COLUMN COLUMNS COMBINE COMMENT COMMIT COMPACT COMPILE
        COMPRESS CONDITION CONFLICT CONNECT CONNECTION CONSISTENCY CONSISTENT CONSTRAINT CONSTRAINTS CONSTRUCTOR CONSUMED
        CONTINUE CONVERT COPY CORRESPONDING COUNT COUNTER CREATE CROSS CUBE CURRENT CURSOR CYCLE DATA DATABASE DATE
        DATETIME DAY DEALLOCATE DEC DECIMAL DECLARE DEFAULT DEFERRABLE DEFERRED DEFINE DEFINED DEFINITION DELETE DELIMITED
        DEPTH DEREF DESC DESCRIBE DESCRIPTOR DETACH DETERMINISTIC DIAGNOSTICS DIRECTORIES DISABLE DISCONNECT DISTINCT
        DISTRIBUTE DO DOMAIN DOUBLE DROP DUMP DURATION DYNAMIC EACH ELEMENT ELSE ELSEIF EMPTY ENABLE END EQUAL EQUALS ERROR
        ESCAPE ESCAPED EVAL EVALUATE EXCEEDED EXCEPT EXCEPTION EXCEPTIONS EXCLUSIVE EXEC EXECUTE EXISTS EXIT EXPLAIN EXPLODE
        EXPORT EXPRESSION EXTENDED EXTERNAL EXTRACT FAIL FALSE FAMILY FETCH FIELDS FILE FILTER FILTERING FINAL FINISH FIRST
        FIXED FLATTERN FLOAT FOR FORCE FOREIGN FORMAT FORWARD FOUND FREE FROM FULL FUNCTION FUNCTIONS GENERAL GENERATE GET
        GLOB GLOBAL GO GOTO GRANT GREATER GROUP GROUPING HANDLER HASH HAVE HAVING HEAP HIDDEN HOLD HOUR IDENTIFIED IDENTITY
        IF IGNORE IMMEDIATE IMPORT IN INCLUDING INCLUSIVE INCREMENT INCREMENTAL INDEX INDEXED INDEXES INDICATOR INFINITE
        INITIALLY INLINE INNER INNTER INOUT INPUT INSENSITIVE INSERT INSTEAD INT INTEGER INTERSECT INTERVAL INTO INVALIDATE
        IS ISOLATION ITEM ITEMS ITERATE JOIN KEY KEYS LAG LANGUAGE LARGE LAST LATERAL LEAD LEADING LEAVE LEFT LENGTH LESS
        LEVEL LIKE LIMIT LIMITED LINES LIST LOAD LOCAL LOCALTIME LOCALTIMESTAMP LOCATION LOCATOR LOCK LOCKS LOG LOGED LONG
        LOOP LOWER MAP MATCH MATERIALIZED MAX MAXLEN MEMBER MERGE METHOD METRICS MIN MINUS MINUTE MISSING MOD MODE MODIFIES
        MODIFY MODULE MONTH MULTI MULTISET NAME NAMES NATIONAL NATURAL NCHAR NCLOB NEW NEXT NO NONE NOT NULL NULLIF NUMBER
        NUMERIC OBJECT OF OFFLINE OFFSET OLD ON ONLINE ONLY OPAQUE OPEN OPERATOR OPTION OR ORDER ORDINALITY OTHER OTHERS
        OUT OUTER OUTPUT OVER OVERLAPS OVERRIDE OWNER PAD PARALLEL PARAMETER PARAMETERS PARTIAL PARTITION PARTITIONED
        PARTITIONS PATH PERCENT PERCENTILE PERMISSION PERMISSIONS PIPE PIPELINED PLAN POOL POSITION PRECISION PREPARE
        PRESERVE PRIMARY PRIOR PRIVATE PRIVILEGES PROCEDURE PROCESSED PROJECT PROJECTION PROPERTY PROVISIONING PUBLIC PUT
        QUERY QUIT QUORUM RAISE RANDOM RANGE RANK RAW READ READS REAL REBUILD RECORD RECURSIVE REDUCE REF REFERENCE
        REFERENCES REFERENCING REGEXP REGION REINDEX RELATIVE RELEASE REMAINDER RENAME REPEAT REPLACE REQUEST RESET
        RESIGNAL RESOURCE RESPONSE RESTORE RESTRICT RESULT RETURN RETURNING RETURNS REVERSE REVOKE RIGHT ROLE ROLES
        ROLLBACK ROLLUP ROUTINE ROW ROWS RULE RULES SAMPLE SATISFIES SAVE SAVEPOINT SCAN SCHEMA SCOPE SCROLL SEARCH SECOND
        SECTION SEGMENT SEGMENTS SELECT SELF SEMI SENSITIVE SEPARATE SEQUENCE SERIALIZABLE SESSION SET SETS SHARD SHARE
        SHARED SHORT SHOW SIGNAL SIMILAR SIZE SKEWED SMALLINT SNAPSHOT SOME SOURCE SPACE SPACES SPARSE SPECIFIC
        SPECIFICTYPE SPLIT SQL SQLCODE SQLERROR SQLEXCEPTION SQLSTATE SQLWARNING START STATE STATIC STATUS STORAGE STORE
        STORED STREAM STRING STRUCT STYLE SUB SUBMULTISET SUBPARTITION SUBSTRING SUBTYPE SUM SUPER SYMMETRIC SYNONYM SYSTEM
        TABLE TABLESAMPLE TEMP TEMPORARY TERMINATED TEXT THAN THEN THROUGHPUT TIME TIMESTAMP TIMEZONE TINYINT TO TOKEN
        TOTAL TOUCH TRAILING TRANSACTION TRANSFORM TRANSLATE TRANSLATION TREAT TRIGGER TRIM TRUE TRUNCATE TTL TUPLE TYPE
        UNDER UNDO UNION UNIQUE UNIT UNKNOWN UNLOGGED UNNEST UNPROCESSED UNSIGNED UNTIL UPDATE UPPER URL USAGE USE USER
        USERS USING UUID VACUUM VALUE VALUED VALUES VARCHAR VARIABLE VARIANCE VARINT VARYING VIEW VIEWS VIRTUAL VOID WAIT
        WHEN WHENEVER WHERE WHILE WINDOW WITH WITHIN WITHOUT WORK WRAPPED WRITE YEAR ZONE
        """.split(whereSeparator: { $0 == " " || $0 == "\n" }).map { String($0) }
    )
}
