import MartletAWS
import MartletLocal
import Testing

/// The expression engine behind the local DynamoDB endpoint, checked against DynamoDB's documented (and observed)
/// behaviour and error wording.
@Suite("DynamoDB expressions")
struct DynamoDBExpressionTests {
    // MARK: Helpers

    private static let item: [String: AttributeValue] = [
        "pk": "p1",
        "a": 1,
        "b": 2,
        "c": 3,
        "s": "hello",
        "bin": .b([104, 105, 32, 116, 104, 101, 114, 101]),  // "hi there"
        "flag": true,
        "nothing": .null,
        "pets": .l([2, "dog", 7, .m(["k": "v"])]),
        "info": .m(["x": 1, "y": .l([-1, 2, 0]), "deep": .m(["z": "zed"])]),
        "strings": .ss(["cat", "dog"]),
        "numbers": .ns(["1", "2.5", "100"]),
        "blobs": .bs([[1, 2], [3]]),
    ]

    private func holds(
        _ text: String, names: [String: String] = [:], values: [String: AttributeValue] = [:], on item: [String: AttributeValue]? = Self.item
    ) throws -> Bool {
        try ConditionExpression(text, names: names, values: values).evaluate(item)
    }

    private func updated(
        _ item: [String: AttributeValue], _ text: String, names: [String: String] = [:], values: [String: AttributeValue] = [:]
    ) throws -> [String: AttributeValue] {
        var item = item
        try UpdateExpression(text, names: names, values: values).apply(to: &item)
        return item
    }

    private func error(_ message: String) -> ExpressionError { ExpressionError(message: message) }

    // MARK: Condition expressions: comparisons

    @Test("= and <> compare values of the same type; numbers by value, sets regardless of order")
    func equality() throws {
        #expect(try holds("a = :v", values: [":v": 1]))
        #expect(try holds("a = :v", values: [":v": .n("1.0")]))
        #expect(try holds("a = :v", values: [":v": .n("1E0")]))
        #expect(try !holds("a = :v", values: [":v": 2]))
        #expect(try holds("a <> :v", values: [":v": 2]))
        #expect(try holds("s = :v", values: [":v": "hello"]))
        #expect(try holds("strings = :v", values: [":v": .ss(["dog", "cat"])]))
        #expect(try holds("numbers = :v", values: [":v": .ns(["100", "1.0", "2.50"])]))
        #expect(try !holds("numbers = :v", values: [":v": .ns(["100", "1"])]))
        #expect(try holds("blobs = :v", values: [":v": .bs([[3], [1, 2]])]))
        #expect(try holds("info = :v", values: [":v": .m(["deep": .m(["z": "zed"]), "y": .l([-1, 2, .n("0.0")]), "x": 1])]))
        #expect(try !holds("pets = :v", values: [":v": .l([2, "dog", 7])]))
        #expect(try holds("flag = :t AND nothing = :n", values: [":t": true, ":n": .null]))
        #expect(try holds("a = a1", on: ["a": 5, "a1": .n("5.00")]))
    }

    @Test("Different types are never equal, always unequal, and never ordered")
    func differentTypes() throws {
        #expect(try !holds("a = :v", values: [":v": "1"]))
        #expect(try holds("a <> :v", values: [":v": "1"]))
        for comparator in ["<", "<=", ">", ">="] {
            #expect(try !holds("a \(comparator) :v", values: [":v": "1"]))
        }
        #expect(try !holds("s = :v", values: [":v": .ss(["hello"])]))
    }

    @Test("A missing attribute fails every comparison except <>, even against another missing attribute")
    func missingAttributes() throws {
        #expect(try !holds("q = :v", values: [":v": 1]))
        #expect(try holds("q <> :v", values: [":v": 1]))
        #expect(try !holds("q = z"))
        #expect(try holds("q <> z"))
        for comparator in ["<", "<=", ">", ">="] {
            #expect(try !holds("q \(comparator) :v", values: [":v": 1]))
            #expect(try !holds(":v \(comparator) q", values: [":v": 1]))
            #expect(try !holds("q \(comparator) z"))
        }
        #expect(try !holds("q BETWEEN z AND x"))
        #expect(try !holds("q IN (:v)", values: [":v": 1]))
        #expect(try !holds("info.nope < info.y[100]"))
        // No item at all: every path is missing.
        #expect(try holds("attribute_not_exists(pk)", on: nil))
        #expect(try holds("pk <> :p", values: [":p": "p1"], on: nil))
        #expect(try !holds("pk = :p", values: [":p": "p1"], on: nil))
    }

    @Test("Ordering: numbers as exact decimals, strings by UTF-8 bytes, binary by unsigned bytes")
    func ordering() throws {
        let numbers: [(String, String)] = [
            ("-0.5", "0"), ("9.99", "10"), ("-10", "-9.99"), ("1e2", "100.5"), ("99", "1E+2"),
            ("12345678901234567890123456789012345677", "12345678901234567890123456789012345678"),
            ("0.000000000000000000000000000000000001", "0.000000000000000000000000000000000002"),
            ("-1E+125", "1E-130"),
        ]
        for (low, high) in numbers {
            #expect(try holds("x < y", on: ["x": .n(low), "y": .n(high)]), "\(low) < \(high)")
            #expect(try !holds("x >= y", on: ["x": .n(low), "y": .n(high)]), "\(low) >= \(high)")
        }
        #expect(try holds("x <= y AND x >= y", on: ["x": .n("1e2"), "y": .n("100")]))
        #expect(try holds("x < y", on: ["x": "Z", "y": "a"]))
        #expect(try holds("x < y", on: ["x": "z", "y": "é"]))
        // UTF-8 order, not UTF-16 order: U+FF61 (EF BD A1) sorts before U+1F600 (F0 9F 98 80).
        #expect(try holds("x < y", on: ["x": "\u{FF61}", "y": "\u{1F600}"]))
        #expect(try holds("x < y", on: ["x": "ab", "y": "abc"]))
        #expect(try holds("x < y", on: ["x": .b([127]), "y": .b([128])]))
        #expect(try holds("x > y", on: ["x": .b([1, 0]), "y": .b([1])]))
    }

    @Test("BETWEEN includes both bounds; IN matches any listed value of any type")
    func betweenAndIn() throws {
        #expect(try holds("a BETWEEN :low AND :high", values: [":low": 0, ":high": 2]))
        #expect(try holds("a between :low and :high", values: [":low": 1, ":high": 1]))
        #expect(try !holds("a BETWEEN :low AND :high", values: [":low": 2, ":high": 7]))
        #expect(try holds("s BETWEEN :low AND :high", values: [":low": "aardvark", ":high": "zebra"]))
        #expect(try !holds("a BETWEEN :low AND :high", values: [":low": "0", ":high": "2"]))
        #expect(try holds("b BETWEEN a AND c"))
        #expect(try !holds("b BETWEEN c AND a"))
        #expect(try holds("a IN (:x, :y)", values: [":x": "dog", ":y": .n("1.0")]))
        #expect(try !holds("a IN (:x, :y)", values: [":x": "dog", ":y": 174]))
        #expect(try holds("pets IN (:l)", values: [":l": .l([2, "dog", 7, .m(["k": "v"])])]))
    }

    @Test("IN takes at most 100 operands, counting the left-hand one")
    func inOperandLimit() throws {
        func values(_ count: Int) -> [String: AttributeValue] {
            Dictionary(uniqueKeysWithValues: (0..<count).map { (":v\($0)", AttributeValue.n(String($0))) })
        }
        func text(_ count: Int) -> String { "a IN (\((0..<count).map { ":v\($0)" }.joined(separator: ", ")))" }
        #expect(try holds(text(99), values: values(99)))
        #expect(throws: error("Invalid FilterExpression: The IN operator is provided with too many operands; number of operands: 101")) {
            try ConditionExpression(text(100), values: values(100), kind: .filter)
        }
    }

    @Test("Nested paths and #name placeholders, including names that are reserved words or contain dots")
    func paths() throws {
        #expect(try holds("info.x < info.y[1]"))
        #expect(try !holds("info.x < info.y[0]"))
        #expect(try holds("info.deep.z = :z", values: [":z": "zed"]))
        #expect(try holds("pets[3].k = :v", values: [":v": "v"]))
        #expect(try !holds("pets[9] = :v OR info.x.y = :v OR s[0] = :v", values: [":v": "v"]))
        #expect(try holds("#status = :v", names: ["#status": "status"], values: [":v": "on"], on: ["status": "on"]))
        #expect(try holds("#m.#d.z = :z", names: ["#m": "info", "#d": "deep"], values: [":z": "zed"]))
        #expect(try holds("#dotted = :v", names: ["#dotted": "a.b"], values: [":v": 1], on: ["a.b": 1, "a": .m(["b": 2])]))
        #expect(try holds("attribute_exists(#and)", names: ["#and": "and"], on: ["and": 1]))
    }

    // MARK: Condition expressions: functions

    @Test("attribute_exists, attribute_not_exists and attribute_type")
    func attributeFunctions() throws {
        #expect(try holds("attribute_exists(a)"))
        #expect(try holds("attribute_exists (nothing)"))
        #expect(try !holds("attribute_exists(q)"))
        #expect(try holds("attribute_not_exists(q) AND attribute_not_exists(info.q) AND attribute_exists(info.y[2])"))
        let types: [(String, String)] = [
            ("s", "S"), ("a", "N"), ("bin", "B"), ("flag", "BOOL"), ("nothing", "NULL"), ("pets", "L"), ("info", "M"),
            ("strings", "SS"), ("numbers", "NS"), ("blobs", "BS"),
        ]
        for (attribute, type) in types {
            #expect(try holds("attribute_type(\(attribute), :t)", values: [":t": .s(type)]), "\(attribute) is \(type)")
            #expect(try !holds("attribute_type(\(attribute), :t)", values: [":t": type == "S" ? "N" : "S"]))
        }
        #expect(try !holds("attribute_type(q, :t)", values: [":t": "S"]))
        #expect(try holds("attribute_type(:v, :t)", values: [":v": 0, ":t": "N"]))
    }

    @Test("begins_with works on strings and binary, with either operand from the item")
    func beginsWith() throws {
        #expect(try holds("begins_with(s, :p)", values: [":p": "hell"]))
        #expect(try !holds("begins_with(s, :p)", values: [":p": "dog"]))
        #expect(try holds("begins_with(bin, :p)", values: [":p": .b([104, 105])]))
        #expect(try !holds("begins_with(s, :p)", values: [":p": .b([104])]))
        #expect(try holds("begins_with(:long, s)", values: [":long": "hellohi"]))
        #expect(try !holds("begins_with(a, :p)", values: [":p": "1"]))
    }

    @Test("contains: substrings of strings and binary, members of sets, elements of lists")
    func contains() throws {
        #expect(try holds("contains(s, :v)", values: [":v": "ell"]))
        #expect(try !holds("contains(s, :v)", values: [":v": "elo"]))
        #expect(try holds("contains(bin, :v)", values: [":v": .b([116, 104, 101])]))
        #expect(try holds("contains(strings, :v)", values: [":v": "dog"]))
        #expect(try !holds("contains(strings, :v)", values: [":v": "do"]))
        #expect(try holds("contains(numbers, :v)", values: [":v": .n("2.50")]))
        #expect(try !holds("contains(numbers, :v)", values: [":v": "1"]))
        #expect(try holds("contains(blobs, :v)", values: [":v": .b([3])]))
        #expect(try holds("contains(pets, :v)", values: [":v": 7]))
        #expect(try holds("contains(pets, :v)", values: [":v": .m(["k": "v"])]))
        #expect(try !holds("contains(pets, :v)", values: [":v": "7"]))
        #expect(try holds("contains(s, :v)", values: [":v": "héllo"], on: ["s": "say héllo"]))
        #expect(try !holds("contains(q, :v)", values: [":v": "x"]))
        #expect(try holds("contains(s, s1)", on: ["s": "hello", "s1": "ll"]))
    }

    @Test("size counts string UTF-16 units, binary bytes and set, pets and info elements; other types fail")
    func size() throws {
        let sizes: [(String, Int)] = [("s", 5), ("bin", 8), ("strings", 2), ("numbers", 3), ("blobs", 2), ("pets", 4), ("info", 3)]
        for (attribute, size) in sizes {
            #expect(try holds("size(\(attribute)) = :n", values: [":n": .n(String(size))]), "size(\(attribute))")
        }
        #expect(try holds("size(x) = :n", values: [":n": 3], on: ["x": "é𝄞"]))
        for attribute in ["a", "flag", "nothing", "q"] {
            #expect(try !holds("size(\(attribute)) = :n", values: [":n": 1]))
            #expect(try holds("size(\(attribute)) <> :n", values: [":n": 1]))
        }
        #expect(try !holds("size(s) = :n", values: [":n": "5"]))
        #expect(try holds("size(s) BETWEEN :two AND :ten AND size(pets) IN (:four)", values: [":two": 2, ":ten": 10, ":four": 4]))
        #expect(try holds("size(:v) = :n", values: [":v": "abc", ":n": 3]))
    }

    // MARK: Condition expressions: logic and precedence

    @Test("AND, OR and NOT with DynamoDB's precedence: comparisons, then NOT, then AND, then OR")
    func precedence() throws {
        // a = 1, b = 2, c = 3
        #expect(try holds("a < b AND b < c"))
        #expect(try !holds("a < b AND c < b"))
        #expect(try holds("b < a OR b < c"))
        #expect(try !holds("b < a OR c < b"))
        #expect(try holds("a < b OR c < b AND b < c"))  // a < b OR (c < b AND b < c)
        #expect(try !holds("(a < b OR c < b) AND c < b"))
        #expect(try !holds("NOT a < b AND c < b"))  // (NOT a < b) AND c < b
        #expect(try holds("NOT b < a"))
        #expect(try holds("NOT NOT NOT NOT a < b"))
        #expect(try !holds("NOT (a < b OR c < b)"))
        #expect(try holds("b BETWEEN a AND c AND a < b"))
        #expect(try holds("(a < b OR b < a) AND (b < c AND (a < b OR b < c))"))
        #expect(try holds("a < b aNd b < c oR c < a"))
        #expect(try holds("nOt b < a"))
        #expect(try holds("(a) < (b)"))
        #expect(try holds("attribute_exists(a) AND NOT attribute_exists(q) AND (contains(s, :v))", values: [":v": "ell"]))
    }

    @Test("Every placeholder counts as used even where evaluation short-circuits")
    func shortCircuit() throws {
        let text = "#n1 = :v1 OR #n2 = :v2"
        let names = ["#n1": "a", "#n2": "b"]
        let values: [String: AttributeValue] = [":v1": 1, ":v2": 2]
        #expect(try holds(text, names: names, values: values))
        try DynamoDBExpressions.checkAllUsed(names: names, values: values, expressions: [text])
    }

    // MARK: Condition expressions: errors

    @Test("Empty expressions and syntax errors report the token and its neighbourhood")
    func conditionSyntaxErrors() {
        #expect(throws: error("Invalid ConditionExpression: The expression can not be empty;")) { try ConditionExpression("") }
        #expect(throws: error("Invalid ConditionExpression: The expression can not be empty;")) { try ConditionExpression("   ") }
        #expect(throws: error(#"Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "=""#)) {
            try ConditionExpression("a = ", values: [:])
        }
        #expect(throws: error(#"Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "a""#)) { try ConditionExpression("a") }
        #expect(throws: error(#"Invalid ConditionExpression: Syntax error; token: "b", near: "a b""#)) { try ConditionExpression("a b") }
        #expect(throws: error(#"Invalid ConditionExpression: Syntax error; token: ")", near: "()""#)) { try ConditionExpression("a IN ()") }
        #expect(throws: error(#"Invalid ConditionExpression: Syntax error; token: "!", near: "c!=""#)) {
            try ConditionExpression("p = :p AND c!=:c", values: [":p": 1, ":c": 2])
        }
        #expect(throws: error(#"Invalid ConditionExpression: Syntax error; token: "AND", near: "a AND b""#)) {
            try ConditionExpression("a AND b = :v", values: [":v": 1])
        }
        #expect(throws: error(#"Invalid ConditionExpression: Syntax error; token: "-", near: "user-id""#)) {
            try ConditionExpression("user-id = :v", values: [":v": 1])
        }
        #expect(throws: error(#"Invalid ConditionExpression: Syntax error; token: ":", near: "= :""#)) { try ConditionExpression("a = :") }
        #expect(throws: error(#"Invalid ConditionExpression: Syntax error; token: "=", near: ") = :v""#)) {
            try ConditionExpression("(a = b) = :v", values: [":v": 1])
        }
        #expect(throws: error(#"Invalid ConditionExpression: Syntax error; token: "AND", near: ":v AND b""#)) {
            try ConditionExpression("NOT :v AND b = :v", values: [":v": 1])
        }
    }

    @Test("Reserved words, undefined placeholders and misused functions are rejected with DynamoDB's messages")
    func conditionSemanticErrors() {
        #expect(throws: error("Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: status")) {
            try ConditionExpression("status = :v", values: [":v": 1])
        }
        #expect(throws: error("Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: Data")) {
            try ConditionExpression("attribute_exists(a.Data)")
        }
        #expect(throws: error("Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :x")) {
            try ConditionExpression("a = :x")
        }
        #expect(throws: error("Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: #x")) {
            try ConditionExpression("#x = :v", values: [":v": 1])
        }
        #expect(throws: error("Invalid ConditionExpression: Invalid function name; function: dog")) {
            try ConditionExpression("dog(a) = :v", values: [":v": 1])
        }
        #expect(throws: error("Invalid ConditionExpression: Invalid function name; function: BEGINS_WITH")) {
            try ConditionExpression("BEGINS_WITH(a, :v)", values: [":v": "x"])
        }
        #expect(throws: error("Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: size")) {
            try ConditionExpression("size(a)")
        }
        #expect(throws: error("Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: attribute_exists")) {
            try ConditionExpression("attribute_exists(a) < :v", values: [":v": 1])
        }
        #expect(throws: error("Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: if_not_exists")) {
            try ConditionExpression("if_not_exists(a, :v) = :v", values: [":v": 1])
        }
        #expect(throws: error("Invalid ConditionExpression: Operator or function requires a document path; operator or function: attribute_exists")) {
            try ConditionExpression("attribute_exists(:v)", values: [":v": 1])
        }
        #expect(throws: error("Invalid ConditionExpression: Incorrect number of operands for operator or function; operator or function: size, number of operands: 2")) {
            try ConditionExpression("size(a, b) = :v", values: [":v": 1])
        }
        #expect(throws: error("Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N")) {
            try ConditionExpression("begins_with(a, :v)", values: [":v": 2])
        }
        #expect(throws: error("Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: size, operand type: N")) {
            try ConditionExpression("size(:v) = :v", values: [":v": 2])
        }
        #expect(throws: error("Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: <, operand type: L")) {
            try ConditionExpression("a < :v", values: [":v": .l([1, 2])])
        }
        #expect(throws: error("Invalid ConditionExpression: Invalid attribute type name found; type: DOG, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}")) {
            try ConditionExpression("attribute_type(a, :t)", values: [":t": "DOG"])
        }
        #expect(throws: error("Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: contains, first operand: [a]")) {
            try ConditionExpression("contains(a, a)")
        }
        #expect(throws: error("Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [a, b, [0]]")) {
            try ConditionExpression("a.b[0] = a.b[0]")
        }
        #expect(throws: error("Invalid ConditionExpression: The expression has redundant parentheses;")) {
            try ConditionExpression("((a = :v))", values: [":v": 1])
        }
        #expect(throws: error("Invalid ConditionExpression: The expression has redundant parentheses;")) {
            try ConditionExpression("((a)) = :v", values: [":v": 1])
        }
        #expect(throws: error("Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:5}, upper bound operand: AttributeValue: {N:1}")) {
            try ConditionExpression("a BETWEEN :low AND :high", values: [":low": 5, ":high": 1])
        }
        #expect(throws: error("Invalid ConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:2}, upper bound operand: AttributeValue: {S:dog}")) {
            try ConditionExpression("a BETWEEN :low AND :high", values: [":low": 2, ":high": "dog"])
        }
        #expect(throws: error("Invalid FilterExpression: Attribute name is a reserved keyword; reserved keyword: name")) {
            try ConditionExpression("name = :v", values: [":v": 1], kind: .filter)
        }
        // Syntax errors come before semantic ones.
        #expect(throws: error(#"Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "=""#)) { try ConditionExpression("status =") }
    }

    @Test("Condition expressions report the top-level attributes they read")
    func conditionTopLevelNames() throws {
        let expression = try ConditionExpression("#a.b = :v AND size(c[0]) > :v OR attribute_exists(d)", names: ["#a": "alpha"], values: [":v": 1])
        #expect(expression.topLevelNames == ["alpha", "c", "d"])
    }

    // MARK: Update expressions: SET

    @Test("SET writes top-level and nested attributes, merging with the rest of the item")
    func set() throws {
        let item: [String: AttributeValue] = ["pk": "p", "a": "hi", "m": .m(["b": 3, "c": 4]), "l": .l(["one", "two", "three"])]
        let result = try updated(item, "SET b = :v, m.c = :seven, m.d = :seven, l[1] = :v", values: [":v": "hello", ":seven": 7])
        #expect(result == ["pk": "p", "a": "hi", "b": "hello", "m": .m(["b": 3, "c": 7, "d": 7]), "l": .l(["one", "hello", "three"])])
        #expect(try updated(["pk": "p"], "set   b=:v  ", values: [":v": 1]) == ["pk": "p", "b": 1])
        #expect(try updated([:], "SET #weird = :v", names: ["#weird": "3 any.thing!"], values: [":v": 1]) == ["3 any.thing!": 1])
        #expect(try updated(["m": .m(["c": .m(["deep": 1])])], "SET m.c = :v", values: [":v": 7]) == ["m": .m(["c": 7])])
    }

    @Test("SET copies attributes, reading every right-hand side before writing anything")
    func setCopies() throws {
        let item: [String: AttributeValue] = ["a": "hello", "m": .m(["c": .l(["hi", .m(["x": .m(["y": .l([3, 5, 7])])])])])]
        #expect(try updated(item, "SET b = a")["b"] == "hello")
        #expect(try updated(item, "SET z = m.c[1].#n.y[2]", names: ["#n": "x"])["z"] == 7)
        #expect(try updated(item, "REMOVE a SET b = a") == ["b": "hello", "m": item["m"]!])
        #expect(throws: ExpressionError.self) { try updated(item, "SET x = :v, y = x", values: [":v": 4]) }
        #expect(throws: error("The provided expression refers to an attribute that does not exist in the item")) { try updated(item, "SET c = z") }
        #expect(throws: error("The provided expression refers to an attribute that does not exist in the item")) { try updated([:], "SET c = c") }
    }

    @Test("SET arithmetic is exact decimal arithmetic on numbers")
    func arithmetic() throws {
        #expect(try updated(["a": 2], "SET a = a + :v", values: [":v": 3]) == ["a": 5])
        #expect(try updated(["a": 2], "SET b = :v - a", values: [":v": 7]) == ["a": 2, "b": 5])
        #expect(try updated(["a": .n("0.1")], "SET a = a + :v", values: [":v": .n("0.2")]) == ["a": .n("0.3")])
        #expect(try updated([:], "SET a = :x + :y", values: [":x": 1, ":y": .n("10000000000000000000000")]) == ["a": .n("10000000000000000000001")])
        #expect(try updated([:], "SET a = :y - :x", values: [":x": 1, ":y": .n("10000000000000000000000")]) == ["a": .n("9999999999999999999999")])
        #expect(try updated([:], "SET a = :x - :y", values: [":x": .n("1.5"), ":y": .n("3.25")]) == ["a": .n("-1.75")])
        #expect(try updated([:], "SET a = :x - :x", values: [":x": .n("1.5")]) == ["a": .n("0")])
        #expect(try updated([:], "SET a = :x + :y", values: [":x": .n("1E+2"), ":y": .n("-0.5")]) == ["a": .n("99.5")])
        #expect(try updated(["n": 2, "c": 7], "SET #nn = #c + #c", names: ["#nn": "nn", "#c": "c"]) == ["n": 2, "c": 7, "nn": 14])
        #expect(throws: error("Number overflow. Attempting to store a number with magnitude larger than supported range")) {
            try updated([:], "SET a = :x + :y", values: [":x": .n("1e50"), ":y": 1])
        }
        #expect(throws: error("Number overflow. Attempting to store a number with magnitude larger than supported range")) {
            try updated([:], "SET a = :x + :x", values: [":x": .n("9e125")])
        }
        #expect(throws: error("The provided expression refers to an attribute that does not exist in the item")) {
            try updated([:], "SET a = a + :v", values: [":v": 1])
        }
        #expect(throws: error("An operand in the update expression has an incorrect data type")) {
            try updated(["a": "x"], "SET a = a + :v", values: [":v": 1])
        }
        #expect(throws: error("Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: +, operand type: S")) {
            try UpdateExpression("SET b = :x + :y", values: [":x": "dog", ":y": 3])
        }
        #expect(throws: error(#"Invalid UpdateExpression: Syntax error; token: "+", near: ":y + :z""#)) {
            try UpdateExpression("SET b = :x + :y + :z", values: [":x": 1, ":y": 2, ":z": 3])
        }
    }

    @Test("if_not_exists picks the existing value, and combines with arithmetic and list_append")
    func ifNotExists() throws {
        #expect(try updated([:], "SET a = if_not_exists(a, :v)", values: [":v": 2]) == ["a": 2])
        #expect(try updated(["a": 2], "SET a = if_not_exists(a, :v)", values: [":v": 3]) == ["a": 2])
        #expect(try updated(["a": 2], "SET b = if_not_exists(a, :v)", values: [":v": 6]) == ["a": 2, "b": 2])
        #expect(try updated([:], "SET b = if_not_exists(b, :zero) + :one", values: [":zero": 0, ":one": 1]) == ["b": 1])
        #expect(try updated(["b": 4], "SET b = if_not_exists(b, :zero) + :one", values: [":zero": 0, ":one": 1]) == ["b": 5])
        #expect(try updated([:], "SET a = if_not_exists(b, if_not_exists(c, :v))", values: [":v": 3]) == ["a": 3])
        let append = "SET a = list_append(if_not_exists(a, :empty), :more)"
        #expect(try updated([:], append, values: [":empty": .l([]), ":more": .l(["x"])]) == ["a": .l(["x"])])
        #expect(try updated(["a": .l(["w"])], append, values: [":empty": .l([]), ":more": .l(["x"])]) == ["a": .l(["w", "x"])])
        #expect(throws: error("Invalid UpdateExpression: Operator or function requires a document path; operator or function: if_not_exists")) {
            try UpdateExpression("SET b = if_not_exists(:v, :v)", values: [":v": 1])
        }
        #expect(throws: error(#"Invalid UpdateExpression: Syntax error; token: "+", near: ":x+:y""#)) {
            try UpdateExpression("SET c = if_not_exists(c, :x+:y)", values: [":x": 1, ":y": 2])
        }
    }

    @Test("list_append concatenates lists in either order and rejects anything else")
    func listAppend() throws {
        let item: [String: AttributeValue] = ["a": .l(["hi", 2])]
        #expect(try updated(item, "SET a = list_append(a, :v)", values: [":v": .l([4, "hello"])]) == ["a": .l(["hi", 2, 4, "hello"])])
        #expect(try updated(item, "SET a = list_append(:v, a)", values: [":v": .l(["dog"])]) == ["a": .l(["dog", "hi", 2])])
        #expect(try updated(item, "SET b = list_append(a, a)") == ["a": item["a"]!, "b": .l(["hi", 2, "hi", 2])])
        #expect(throws: error("The provided expression refers to an attribute that does not exist in the item")) {
            try updated(item, "SET a = list_append(b, :v)", values: [":v": .l([1])])
        }
        #expect(throws: error("An operand in the update expression has an incorrect data type")) {
            try updated(["a": .ss(["x"])], "SET a = list_append(a, :v)", values: [":v": .l([1])])
        }
        #expect(throws: error("Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append, operand type: S")) {
            try UpdateExpression("SET a = list_append(:v, :w)", values: [":v": .l([1]), ":w": "hi"])
        }
        #expect(throws: error("Invalid UpdateExpression: Incorrect number of operands for operator or function; operator or function: list_append, number of operands: 1")) {
            try UpdateExpression("SET a = list_append(:v)", values: [":v": .l([1])])
        }
        #expect(throws: error("Invalid UpdateExpression: The function is not allowed to be used this way in an expression; function: list_append")) {
            try UpdateExpression("SET a = list_append(list_append(:v, :v), :v)", values: [":v": .l([1])])
        }
        #expect(throws: error("Invalid UpdateExpression: Invalid function name; function: LIST_APPEND")) {
            try UpdateExpression("SET a = LIST_APPEND(:v, :v)", values: [":v": .l([1])])
        }
        #expect(throws: error("Invalid UpdateExpression: Invalid function name; function: f")) { try UpdateExpression("SET a = f(b, c, d)") }
    }

    @Test("SET on list elements past the end appends them in index order")
    func setPastEnd() throws {
        let item: [String: AttributeValue] = ["a": .l(["one", "two", "three"])]
        #expect(try updated(item, "SET a[7] = :v", values: [":v": "hello"]) == ["a": .l(["one", "two", "three", "hello"])])
        let result = try updated(item, "SET a[84] = :a1, a[37] = :a2, a[17] = :a3, a[50] = :a4", values: [":a1": "a1", ":a2": "a2", ":a3": "a3", ":a4": "a4"])
        #expect(result == ["a": .l(["one", "two", "three", "a3", "a2", "a4", "a1"])])
    }

    @Test("Writing below a missing or non-container attribute is an invalid document path")
    func invalidDocumentPaths() {
        let item: [String: AttributeValue] = ["a": "hello", "b": .l(["hi"]), "m": .m(["x": 1])]
        let invalid = error("The document path provided in the update expression is invalid for update")
        for text in ["SET a.c = :v", "SET b.c = :v", "SET c.c = :v", "SET a[0] = :v", "SET m[0] = :v", "SET q[0] = :v", "SET m.q.r = :v", "SET b[5].x = :v"] {
            #expect(throws: invalid, "\(text)") { try updated(item, text, values: [":v": 7]) }
        }
        for text in ["REMOVE a.c", "REMOVE b.c", "REMOVE c.c", "REMOVE a[0]", "REMOVE m.q.r"] {
            #expect(throws: invalid, "\(text)") { try updated(item, text) }
        }
        #expect(throws: invalid) { try updated(item, "ADD m.q.r :v", values: [":v": 1]) }
    }

    // MARK: Update expressions: REMOVE

    @Test("REMOVE deletes attributes, map members and list elements; missing leaves are ignored")
    func remove() throws {
        let item: [String: AttributeValue] = ["p": "x", "a": .m(["b": 3, "c": .l(["hi", .m(["x": .m(["y": .l([3, 5, 7])]), "q": 2])])]), "l": .l([4, 5, 6])]
        #expect(try updated(item, "REMOVE a.c[1].x.y[1], a.c[1].q") == ["p": "x", "a": .m(["b": 3, "c": .l(["hi", .m(["x": .m(["y": .l([3, 7])])])])]), "l": .l([4, 5, 6])])
        #expect(try updated(item, "REMOVE p, l") == ["a": item["a"]!])
        #expect(try updated(item, "REMOVE l[17], a.zz, nope") == item)
        #expect(try updated(["m": .m(["b": 1])], "REMOVE m.b") == ["m": .m([:])])
        #expect(try updated(["l": .l([1])], "REMOVE l[0]") == ["l": .l([])])
        #expect(try updated(["l": .l([0, 1, 2, 3, 4])], "REMOVE l[1], l[3]") == ["l": .l([0, 2, 4])])
        #expect(try updated(["l": .l([0, 1, 2, 3, 4])], "REMOVE l[3], l[1]") == ["l": .l([0, 2, 4])])
    }

    @Test("On an item that does not exist yet, REMOVE ignores any path while SET still needs existing parents")
    func newItem() throws {
        var item: [String: AttributeValue] = ["pk": "p"]
        try UpdateExpression("REMOVE x.y, z[0] SET a = :v", values: [":v": 1]).apply(to: &item, itemExists: false)
        #expect(item == ["pk": "p", "a": 1])
        #expect(throws: ExpressionError(message: "The document path provided in the update expression is invalid for update")) {
            try UpdateExpression("SET x.y = :v", values: [":v": 1]).apply(to: &item, itemExists: false)
        }
        #expect(throws: ExpressionError(message: "The document path provided in the update expression is invalid for update")) {
            try UpdateExpression("REMOVE x.y").apply(to: &item)
        }
    }

    @Test("List indexes refer to the positions before the update, whatever the order of the clauses")
    func originalIndexes() throws {
        let item: [String: AttributeValue] = ["a": .l([2, 3, 4, 5, 6, 7])]
        #expect(try updated(item, "REMOVE a[1] SET a[3] = :v", values: [":v": 17]) == ["a": .l([2, 4, 17, 6, 7])])
        #expect(try updated(item, "SET a[3] = :v REMOVE a[1]", values: [":v": 17]) == ["a": .l([2, 4, 17, 6, 7])])
    }

    // MARK: Update expressions: ADD and DELETE

    @Test("ADD adds to numbers and unions sets, creating the attribute when it is missing")
    func add() throws {
        #expect(try updated(["a": 3], "ADD a :v", values: [":v": 4]) == ["a": 7])
        #expect(try updated(["a": .n("0.5")], "ADD a :v", values: [":v": .n("-0.25")]) == ["a": .n("0.25")])
        #expect(try updated([:], "ADD a :v", values: [":v": .n("1E+2")]) == ["a": 100])
        #expect(try updated(["s": .ss(["dog", "cat"])], "ADD s :v", values: [":v": .ss(["pig", "cat"])]) == ["s": .ss(["dog", "cat", "pig"])])
        #expect(try updated([:], "ADD s :v", values: [":v": .ss(["cat"])]) == ["s": .ss(["cat"])])
        #expect(try updated(["n": .ns(["1", "2"])], "ADD n :v", values: [":v": .ns(["1.0", "3"])]) == ["n": .ns(["1", "2", "3"])])
        #expect(try updated(["b": .bs([[1]])], "ADD b :v", values: [":v": .bs([[1], [2]])]) == ["b": .bs([[1], [2]])])
        #expect(try updated(["m": .m(["l": .l([1, .ss(["x"])])])], "ADD m.l[1] :v, m.n :w", values: [":v": .ss(["y"]), ":w": 1])
            == ["m": .m(["l": .l([1, .ss(["x", "y"])]), "n": 1])])
        for (existing, operand) in [(AttributeValue.s("hi"), AttributeValue.n("1")), (.ss(["a"]), .ns(["1"])), (.l([1]), .ns(["1"])), (.n("1"), .ss(["a"]))] {
            #expect(throws: error("An operand in the update expression has an incorrect data type")) {
                try updated(["a": existing], "ADD a :v", values: [":v": operand])
            }
        }
        #expect(throws: error("Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING")) {
            try UpdateExpression("ADD a :v", values: [":v": "hello"])
        }
        #expect(throws: error("Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: LIST")) {
            try UpdateExpression("ADD a :v", values: [":v": .l([3, 4])])
        }
        #expect(throws: error(#"Invalid UpdateExpression: Syntax error; token: ":", near: "hits : incr""#)) {
            try UpdateExpression("ADD hits : incr", values: [":incr": 1])
        }
    }

    @Test("DELETE removes set elements, and the attribute once the set is empty")
    func delete() throws {
        let item: [String: AttributeValue] = ["a": .ss(["dog", "cat", "mouse"]), "b": "hi", "n": .ns(["1", "2"])]
        #expect(try updated(item, "DELETE a :v", values: [":v": .ss(["cat", "mouse"])]) == ["a": .ss(["dog"]), "b": "hi", "n": item["n"]!])
        #expect(try updated(item, "DELETE a :v", values: [":v": .ss(["pig"])]) == item)
        #expect(try updated(item, "DELETE a :v", values: [":v": .ss(["dog", "cat", "mouse"])]) == ["b": "hi", "n": item["n"]!])
        #expect(try updated(item, "DELETE q :v", values: [":v": .ss(["dog"])]) == item)
        #expect(try updated(item, "DELETE n :v", values: [":v": .ns(["1.0"])]) == ["a": item["a"]!, "b": "hi", "n": .ns(["2"])])
        #expect(throws: error("An operand in the update expression has an incorrect data type")) {
            try updated(item, "DELETE n :v", values: [":v": .ss(["1"])])
        }
        #expect(throws: error("Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER")) {
            try UpdateExpression("DELETE a :v", values: [":v": 1])
        }
        #expect(throws: error("Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: STRING")) {
            try UpdateExpression("DELETE a :v", values: [":v": "hello"])
        }
    }

    // MARK: Update expressions: structure and errors

    @Test("Clauses combine in any order and case, each at most once")
    func clauses() throws {
        let item: [String: AttributeValue] = ["a": 1, "b": 2, "s": .ss(["x", "y"])]
        let result = try updated(item, "remove a Set c = :c Add n :one DELETE s :x", values: [":c": 3, ":one": 1, ":x": .ss(["x"])])
        #expect(result == ["b": 2, "c": 3, "n": 1, "s": .ss(["y"])])
        #expect(throws: error(#"Invalid UpdateExpression: The "SET" section can only be used once in an update expression;"#)) {
            try UpdateExpression("SET a = :v REMOVE b SET c = :v", values: [":v": 1])
        }
        #expect(throws: error("Invalid UpdateExpression: The expression can not be empty;")) { try UpdateExpression("") }
        #expect(throws: error(#"Invalid UpdateExpression: Syntax error; token: "HELLO", near: "HELLO b""#)) {
            try UpdateExpression("HELLO b = :v", values: [":v": 1])
        }
        #expect(throws: error(#"Invalid UpdateExpression: Syntax error; token: "1", near: "+ 1""#)) { try UpdateExpression("SET a = a + 1") }
        #expect(throws: error(#"Invalid UpdateExpression: Syntax error; token: "_", near: "SET _123""#)) {
            try UpdateExpression("SET _123 = :v", values: [":v": 1])
        }
        #expect(throws: error(#"Invalid UpdateExpression: Syntax error; token: ":xyz", near: "[:xyz]""#)) {
            try UpdateExpression("SET a[:xyz] = :v", values: [":v": 1, ":xyz": 1])
        }
        #expect(throws: error(#"Invalid UpdateExpression: Syntax error; token: ":a", near: "SET :a =""#)) {
            try UpdateExpression("SET :a = :b", values: [":a": 1, ":b": 2])
        }
        #expect(throws: error(#"Invalid UpdateExpression: Syntax error; token: "<EOF>", near: ",""#)) {
            try UpdateExpression("SET a = :v,", values: [":v": 1])
        }
        #expect(throws: error("Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: status")) {
            try UpdateExpression("SET status = :v", values: [":v": 1])
        }
        #expect(throws: error("Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :val1")) {
            try UpdateExpression("SET b = :val1", values: [":val2": 4])
        }
        #expect(throws: error("Invalid UpdateExpression: An expression attribute name used in the document path is not defined; attribute name: #name")) {
            try UpdateExpression("SET #name = :v", names: ["#wrongname": "x"], values: [":v": 4])
        }
    }

    @Test("No two actions may touch overlapping or conflicting document paths")
    func overlappingPaths() {
        func overlap(_ one: String, _ two: String) -> ExpressionError {
            error("Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: \(one), path two: \(two)")
        }
        let values: [String: AttributeValue] = [":v": 1, ":w": 2]
        #expect(throws: overlap("[a]", "[a]")) { try UpdateExpression("SET a = :v REMOVE a", values: values) }
        #expect(throws: overlap("[a]", "[a]")) { try UpdateExpression("SET a = :v, a = :w", values: values) }
        #expect(throws: overlap("[a]", "[a]")) { try UpdateExpression("SET #a1 = :v, #a2 = :w", names: ["#a1": "a", "#a2": "a"], values: values) }
        #expect(throws: overlap("[a]", "[a, b]")) { try UpdateExpression("SET a = :v, a.b = :w", values: values) }
        #expect(throws: overlap("[a, b, c, d, e]", "[a, b]")) { try UpdateExpression("SET a.b.c.d.e = :v, a.b = :w", values: values) }
        #expect(throws: overlap("[a, [1], [1]]", "[a, [1]]")) { try UpdateExpression("SET a[1][1] = :v, a[1] = :w", values: values) }
        #expect(throws: overlap("[a]", "[a]")) { try UpdateExpression("ADD a :v DELETE a :s", values: [":v": 1, ":s": .ss(["x"])]) }
        #expect(throws: error("Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a, [1]]")) {
            try UpdateExpression("SET a.b = :v, a[1] = :w", values: values)
        }
        #expect(throws: Never.self) { try UpdateExpression("SET a.b = :v, a.c = :w, b[1] = :v, b[2] = :w REMOVE c.d", values: values) }
    }

    @Test("Non-overlapping nested updates apply together")
    func multipleNestedUpdates() throws {
        let item: [String: AttributeValue] = ["a": .m(["x": 3, "y": 4, "c": .m(["y": 3])]), "b": .m(["x": 1, "y": 2])]
        let result = try updated(item, "SET a.b = :v1, a.c.d = :v2, b.x = :v3 REMOVE a.x, b.y", values: [":v1": 10, ":v2": "dog", ":v3": 17])
        #expect(result == ["a": .m(["y": 4, "b": 10, "c": .m(["y": 3, "d": "dog"])]), "b": .m(["x": 17])])
    }

    @Test("The updated top-level attributes are reported, and a failed update leaves the item untouched")
    func updatedNamesAndAtomicity() throws {
        let expression = try UpdateExpression("SET a.b = :v, #c = b REMOVE d[0] ADD e :n DELETE f :s", names: ["#c": "c"], values: [":v": 1, ":n": 1, ":s": .ss(["x"])])
        #expect(expression.updatedTopLevelNames == ["a", "c", "d", "e", "f"])
        var item: [String: AttributeValue] = ["x": 1, "y": "text"]
        #expect(throws: ExpressionError.self) { try UpdateExpression("SET x = :v, z = x + y", values: [":v": 2]).apply(to: &item) }
        #expect(throws: ExpressionError.self) { try UpdateExpression("SET x = :v REMOVE y.z", values: [":v": 2]).apply(to: &item) }
        #expect(item == ["x": 1, "y": "text"])
    }

    // MARK: Key conditions

    @Test("A key condition splits into the partition value and a sort-key condition")
    func keyConditions() throws {
        func parse(_ text: String, _ values: [String: AttributeValue], names: [String: String] = [:]) throws -> KeyCondition {
            try KeyCondition(text, names: names, values: values, partitionKey: "pk", sortKey: "sk")
        }
        let only = try parse(" pk  =   :p ", [":p": "p1"])
        #expect(only.partitionValue == "p1" && only.sortCondition == nil)
        let cases: [(String, SortCondition)] = [
            ("pk = :p AND sk = :s", .equal(5)),
            ("pk = :p AND sk < :s", .less(5)),
            ("pk = :p AND sk <= :s", .lessOrEqual(5)),
            ("pk = :p AND sk > :s", .greater(5)),
            ("pk = :p AND sk >= :s", .greaterOrEqual(5)),
            (":p = pk AND :s < sk", .greater(5)),
            (":s >= sk AND :p = pk", .lessOrEqual(5)),
            ("sk = :s AND pk = :p", .equal(5)),
            ("((sk = :s) AND (pk = :p))", .equal(5)),
        ]
        for (text, expected) in cases {
            let condition = try parse(text, [":p": "p1", ":s": 5])
            #expect(condition.partitionValue == "p1", "\(text)")
            #expect(condition.sortCondition == expected, "\(text)")
        }
        #expect(try parse("pk = :p AnD sk BeTwEeN :lo aNd :hi", [":p": "p1", ":lo": 4, ":hi": 7]).sortCondition == .between(4, 7))
        #expect(try parse("pk = :p AND begins_with(sk, :pre)", [":p": "p1", ":pre": "00"]).sortCondition == .beginsWith("00"))
        #expect(try parse("#p = :p AND #s = :s", [":p": "p1", ":s": 3], names: ["#p": "pk", "#s": "sk"]).sortCondition == .equal(3))
        #expect(try KeyCondition("id = :id", values: [":id": 1], partitionKey: "id", sortKey: nil).partitionValue == 1)
    }

    @Test("Key conditions outside DynamoDB's subset are rejected with DynamoDB's messages")
    func keyConditionErrors() {
        func parse(_ text: String, sortKey: String? = "sk") throws {
            _ = try KeyCondition(text, values: [":p": "p1", ":s": 3, ":a": 3, ":n": 3, ":str": "x"], partitionKey: "pk", sortKey: sortKey)
        }
        let cases: [(String, String)] = [
            ("pk < :p", "Query key condition not supported"),
            ("begins_with(pk, :str)", "Query key condition not supported"),
            ("sk = :s", "Query condition missed key schema element: pk"),
            ("pk = :p AND a < :a", "Query condition missed key schema element: sk"),
            ("pk = :p AND sk < :s AND a < :a", "Conditions can be of length 1 or 2 only"),
            ("pk = :p AND pk = :p", "KeyConditionExpressions must only contain one condition per key"),
            ("pk = :p AND sk >= :s AND sk <= :a", "KeyConditionExpressions must only contain one condition per key"),
            ("sk = :s OR pk = :p", "Invalid operator used in KeyConditionExpression: OR"),
            ("NOT sk = :s AND pk = :p", "Invalid operator used in KeyConditionExpression: NOT"),
            ("pk = :p AND sk <> :s", "Invalid operator used in KeyConditionExpression: <>"),
            ("pk = :p AND sk IN (:s)", "Invalid operator used in KeyConditionExpression: IN"),
            ("pk = :p AND attribute_exists(sk)", "Invalid operator used in KeyConditionExpression: attribute_exists"),
            ("pk = :p AND contains(sk, :s)", "Invalid operator used in KeyConditionExpression: contains"),
            ("pk = sk", "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition"),
            (":p = :a", "Invalid condition in KeyConditionExpression: No key attribute specified"),
            ("pk = :p AND a.b < :a", "KeyConditionExpressions cannot have conditions on nested attributes"),
            ("pk = :p AND size(sk) = :n", "KeyConditionExpressions cannot contain nested operations"),
            ("pk = :p AND :s BETWEEN sk AND :a", "Invalid condition in KeyConditionExpression: BETWEEN operator must have the key attribute as its first operand"),
            ("pk = :p AND begins_with(:str, sk)", "Invalid condition in KeyConditionExpression: begins_with operator must have the key attribute as its first operand"),
            ("pk = :p AND begins_with(sk, :n)", "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"),
            ("pk = :p AND dog(sk, :s)", "Invalid KeyConditionExpression: Invalid function name; function: dog"),
            ("pk = :p AND BEGINS_WITH(sk, :str)", "Invalid KeyConditionExpression: Invalid function name; function: BEGINS_WITH"),
            ("((sk = :s) AND ((pk = :p)))", "Invalid KeyConditionExpression: The expression has redundant parentheses;"),
            ("pk", #"Invalid KeyConditionExpression: Syntax error; token: "<EOF>", near: "pk""#),
            ("pk = :p AND c!=:s", #"Invalid KeyConditionExpression: Syntax error; token: "!", near: "c!=""#),
            ("", "Invalid KeyConditionExpression: The expression can not be empty;"),
            ("pk = :q", "Invalid KeyConditionExpression: An expression attribute value used in expression is not defined; attribute value: :q"),
        ]
        for (text, message) in cases {
            #expect(throws: ExpressionError(message: message), "\(text)") { try parse(text) }
        }
        #expect(throws: ExpressionError(message: "Query key condition not supported")) { try parse("pk = :p AND sk = :s", sortKey: nil) }
    }

    @Test("Sort conditions match values of the key's type in DynamoDB's order")
    func sortConditionMatching() {
        #expect(SortCondition.less(.n("10")).matches(.n("9.5")))
        #expect(!SortCondition.less(.n("10")).matches(.n("1E+1")))
        #expect(SortCondition.lessOrEqual(.n("10")).matches(.n("1E+1")))
        #expect(SortCondition.equal(.n("100")).matches(.n("1e2")))
        #expect(SortCondition.greater("abc").matches("abd"))
        #expect(SortCondition.greaterOrEqual(.b([127])).matches(.b([128])))
        #expect(SortCondition.between("004", "007").matches("005"))
        #expect(SortCondition.between("004", "007").matches("007"))
        #expect(!SortCondition.between("004", "007").matches("0071"))
        #expect(SortCondition.beginsWith("00").matches("005"))
        #expect(SortCondition.beginsWith(.b([1])).matches(.b([1, 2])))
        #expect(!SortCondition.beginsWith("00").matches(.b([48, 48])))
        #expect(!SortCondition.equal(5).matches("5"))
        #expect(SortCondition.compare("a", "b") == -1)
        #expect(SortCondition.compare(.n("-1"), .n("-2")) == 1)
        #expect(SortCondition.compare("a", 1) == nil)
    }

    // MARK: Projection expressions

    @Test("Projections keep the requested paths, nested maps and list elements in their original shape")
    func projection() throws {
        let item: [String: AttributeValue] = ["p": "key", "a": .m(["b": .l([2, 4, .m(["x": "hi", "y": "yo"])]), "c": 5]), "b": "hello"]
        func project(_ text: String, names: [String: String] = [:]) throws -> [String: AttributeValue] {
            try ProjectionExpression(text, names: names).apply(item)
        }
        #expect(try project("a") == ["a": item["a"]!])
        #expect(try project(" p  ,   b  ") == ["p": "key", "b": "hello"])
        #expect(try project("a.b") == ["a": .m(["b": .l([2, 4, .m(["x": "hi", "y": "yo"])])])])
        #expect(try project("a.b[0]") == ["a": .m(["b": .l([2])])])
        #expect(try project("a.b[2].y") == ["a": .m(["b": .l([.m(["y": "yo"])])])])
        #expect(try project("a.b[2].y, a.b[0]") == ["a": .m(["b": .l([2, .m(["y": "yo"])])])])
        #expect(try project("a.b[0],a.c") == ["a": .m(["b": .l([2]), "c": 5])])
        #expect(try project("a.c,b") == ["a": .m(["c": 5]), "b": "hello"])
        for missing in ["x", "a.b[3]", "a.x", "a.x.y", "a.b[3].x", "a.b.x", "a[0]", "a.b[0].x", "a.b[0][0]"] {
            #expect(try project(missing) == [:], "\(missing)")
        }
        #expect(try project("a.x, a.b[0], x, a.b[3].x") == ["a": .m(["b": .l([2])])])
        #expect(try project("#n1.#n2", names: ["#n1": "a", "#n2": "c"]) == ["a": .m(["c": 5])])
        let dotted: [String: AttributeValue] = ["a.b": "hi", "a": .m(["b": "yo", "c": "jo"])]
        #expect(try ProjectionExpression("a.b").apply(dotted) == ["a": .m(["b": "yo"])])
        #expect(try ProjectionExpression("#name", names: ["#name": "a.b"]).apply(dotted) == ["a.b": "hi"])
        #expect(try ProjectionExpression("a, #b.c[0]", names: ["#b": "bee"]).topLevelNames == ["a", "bee"])
    }

    @Test("Projection errors: syntax, reserved words, undefined names, overlapping and conflicting paths")
    func projectionErrors() {
        func overlap(_ one: String, _ two: String) -> ExpressionError {
            error("Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: \(one), path two: \(two)")
        }
        #expect(throws: overlap("[a]", "[a]")) { try ProjectionExpression("a, a") }
        #expect(throws: overlap("[a]", "[a, b, [2], c]")) { try ProjectionExpression("a, a.b[2].c") }
        #expect(throws: overlap("[a, b, d, e]", "[a, b]")) { try ProjectionExpression("a.b.d.e, a.b") }
        #expect(throws: overlap("[a, [1]]", "[a, [1]]")) { try ProjectionExpression("a[1], a[1]") }
        #expect(throws: error("Invalid ProjectionExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a, [1]]")) {
            try ProjectionExpression("a.b, a[1]")
        }
        for fine in ["a, b", "a.b, a.c", "a.b.d, a.b.e", "a[1], a[2]", "a.b, a.c[2]"] {
            #expect(throws: Never.self, "\(fine)") { try ProjectionExpression(fine) }
        }
        #expect(throws: error(#"Invalid ProjectionExpression: Syntax error; token: "!", near: "!!""#)) { try ProjectionExpression("!!!") }
        #expect(throws: error(#"Invalid ProjectionExpression: Syntax error; token: "<EOF>", near: ",""#)) { try ProjectionExpression("a,") }
        #expect(throws: error(#"Invalid ProjectionExpression: Syntax error; token: ",", near: ",a""#)) { try ProjectionExpression(",a") }
        #expect(throws: error(#"Invalid ProjectionExpression: Syntax error; token: ",", near: ",,b""#)) { try ProjectionExpression("a,,b") }
        #expect(throws: error(#"Invalid ProjectionExpression: Syntax error; token: "b", near: "a b""#)) { try ProjectionExpression("a b") }
        #expect(throws: error("Invalid ProjectionExpression: The expression can not be empty;")) { try ProjectionExpression("") }
        #expect(throws: error("Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: Comment")) {
            try ProjectionExpression("Comment")
        }
        #expect(throws: error("Invalid ProjectionExpression: An expression attribute name used in the document path is not defined; attribute name: #name")) {
            try ProjectionExpression("#name", names: ["#wrong": "a"])
        }
    }

    // MARK: Placeholder bookkeeping

    @Test("Unused or malformed placeholders are rejected across all of a request's expressions")
    func placeholdersUsed() throws {
        let names = ["#n1": "a", "#n2": "b"]
        let values: [String: AttributeValue] = [":v1": 1, ":v2": 2]
        try DynamoDBExpressions.checkAllUsed(names: names, values: values, expressions: ["SET #n1 = :v1", "#n2 = :v2", nil])
        try DynamoDBExpressions.checkAllUsed(names: [:], values: [:], expressions: [nil, "a = b"])
        #expect(throws: error("Value provided in ExpressionAttributeValues unused in expressions: keys: {:v2}")) {
            try DynamoDBExpressions.checkAllUsed(names: names, values: values, expressions: ["SET #n1 = :v1, #n2 = :v1"])
        }
        #expect(throws: error("Value provided in ExpressionAttributeNames unused in expressions: keys: {#n2, #n3}")) {
            try DynamoDBExpressions.checkAllUsed(names: ["#n1": "a", "#n2": "b", "#n3": "c"], values: [:], expressions: ["#n1"])
        }
        #expect(throws: error("Value provided in ExpressionAttributeValues unused in expressions: keys: {:qq}")) {
            try DynamoDBExpressions.checkAllUsed(names: [:], values: [":qq": 3], expressions: [nil])
        }
        #expect(throws: error(##"ExpressionAttributeNames contains invalid key: Syntax error; key: "#hi-there""##)) {
            try DynamoDBExpressions.checkAllUsed(names: ["#hi-there": "x"], values: [:], expressions: ["#hi"])
        }
        #expect(throws: error(#"ExpressionAttributeValues contains invalid key: Syntax error; key: ":""#)) {
            try DynamoDBExpressions.checkAllUsed(names: [:], values: [":": 1], expressions: ["a = :"])
        }
    }

    // MARK: Numbers

    @Test("Numbers normalise the way DynamoDB stores them")
    func numberNormalisation() throws {
        let cases: [(String, String)] = [
            ("1E+2", "100"), ("1e2", "100"), ("-0", "0"), ("0.000", "0"), ("0e1000", "0"), ("1.50", "1.5"), ("+3", "3"),
            (".123", "0.123"), ("5.", "5"), ("0001.23", "1.23"), ("1e-5", "0.00001"), ("-17.4E37", "-174" + String(repeating: "0", count: 36)),
            ("-7.1234", "-7.1234"), ("100", "100"), ("12345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
            ("3.1415926535897932384626433832795028841", "3.1415926535897932384626433832795028841"), ("1e-130", "0." + String(repeating: "0", count: 129) + "1"),
            ("9.9999999999999999999999999999999999999E+125", "99999999999999999999999999999999999999" + String(repeating: "0", count: 88)),
        ]
        for (text, normalised) in cases {
            #expect(try DynamoDBNumber.normalize(text) == normalised, "\(text)")
        }
        #expect(try DynamoDBNumber("1.0") == DynamoDBNumber("1"))
        #expect(try DynamoDBNumber("-0") == DynamoDBNumber("0"))
        #expect(try DynamoDBNumber("2.5").description == "2.5")
    }

    @Test("Numbers nested anywhere in a value normalise together")
    func nestedNumberNormalisation() throws {
        let value: AttributeValue = .m(["n": .n("1E+2"), "l": .l([.n("-0"), "x", .ns(["1.50", "2"])]), "s": .ss(["1.50"])])
        #expect(try DynamoDBNumber.normalizingNumbers(in: value) == .m(["n": 100, "l": .l([0, "x", .ns(["1.5", "2"])]), "s": .ss(["1.50"])]))
        #expect(throws: ExpressionError(message: "The parameter cannot be converted to a numeric value: x")) {
            try DynamoDBNumber.normalizingNumbers(in: .l([.ns(["x"])]))
        }
    }

    @Test("Numbers DynamoDB cannot store are rejected")
    func numberValidation() {
        for text in ["NaN", "Infinity", "-Infinity", "dog", " 1", "1 ", "", ".", "-", "1e", "1e+", "1.2.3", "0x10", "1_000"] {
            #expect(throws: ExpressionError(message: "The parameter cannot be converted to a numeric value: \(text)"), "\(text)") {
                try DynamoDBNumber(text)
            }
        }
        for text in ["1e126", "11e125", "-1e126"] {
            #expect(throws: ExpressionError(message: "Number overflow. Attempting to store a number with magnitude larger than supported range")) {
                try DynamoDBNumber(text)
            }
        }
        for text in ["1e-131", "0.9e-130"] {
            #expect(throws: ExpressionError(message: "Number underflow. Attempting to store a number with magnitude smaller than supported range")) {
                try DynamoDBNumber(text)
            }
        }
        for text in ["3.14159265358979323846264338327950288419", "314159265358979323846264338327950288419e30"] {
            #expect(throws: ExpressionError(message: "Attempting to store more than 38 significant digits in a Number")) { try DynamoDBNumber(text) }
        }
        #expect(throws: Never.self) { try DynamoDBNumber("100000000000000000000000000000000000000000000000000") }
    }

    @Test("Number comparison and arithmetic are exact")
    func numberArithmetic() throws {
        func number(_ text: String) throws -> DynamoDBNumber { try DynamoDBNumber(text) }
        #expect(try number("-0.5") < number("0"))
        #expect(try number("9.99") < number("10"))
        #expect(try number("-10") < number("-9.99"))
        #expect(try !(number("1e2") < number("100")))
        #expect(try number("0.1").adding(number("0.2")).text == "0.3")
        #expect(try number("-5").adding(number("3")).text == "-2")
        #expect(try number("5").subtracting(number("5")).text == "0")
        #expect(try number("5").subtracting(number("-5")).text == "10")
        #expect(try number("-1.25").subtracting(number("0.75")).text == "-2")
        #expect(try number("99999999999999999999999999999999999999").adding(number("1")).text == "100000000000000000000000000000000000000")
        #expect(try number("1e125").subtracting(number("1e125")).text == "0")
        #expect(throws: ExpressionError(message: "Number overflow. Attempting to store a number with magnitude larger than supported range")) {
            try number("1e50").adding(number("1"))
        }
        #expect(throws: ExpressionError(message: "Number overflow. Attempting to store a number with magnitude larger than supported range")) {
            try number("9e125").subtracting(number("-9e125"))
        }
        #expect(throws: ExpressionError(message: "Number underflow. Attempting to store a number with magnitude smaller than supported range")) {
            try number("2e-130").subtracting(number("1.5e-130"))
        }
    }
}
