import Testing

@testable import MartletWorker

@Suite struct ModelCatalogTests {
    @Test func alwaysOffersTheDemoAndNoopModels() throws {
        let catalog = try ModelCatalog.fromEnvironment([:])
        #expect(catalog.names == ["demo", "noop"])
        #expect(catalog.model(named: "demo") is DemoAudioModel)
        #expect(catalog.model(named: "noop") is NoopModel)
        #expect(catalog.model(named: "command") == nil)
    }

    @Test func addsTheCommandSplitOnSpaces() throws {
        let catalog = try ModelCatalog.fromEnvironment([
            "MODEL_COMMAND": "  python3 /opt/model.py  --fast ",
            "MODEL_COMMAND_NAME": "musicgen",
            "MODEL_COMMAND_TIMEOUT_SECONDS": "90.5",
        ])
        #expect(catalog.names == ["demo", "noop", "musicgen"])
        let model = try #require(catalog.model(named: "musicgen") as? CommandModel)
        #expect(model.executable == "python3")
        #expect(model.arguments == ["/opt/model.py", "--fast"])
        #expect(model.timeout == .milliseconds(90_500))
    }

    @Test func acceptsTheCommandAsAJSONArray() throws {
        let catalog = try ModelCatalog.fromEnvironment(["MODEL_COMMAND": #"["python3", "/opt/my model.py"]"#])
        let model = try #require(catalog.model(named: "command") as? CommandModel)
        #expect(model.arguments == ["/opt/my model.py"])
        #expect(model.timeout == nil)
    }

    @Test(arguments: [
        ["MODEL_COMMAND": "[\"python3\", 3]"],
        ["MODEL_COMMAND": "[]"],
        ["MODEL_COMMAND": "python3", "MODEL_COMMAND_NAME": "demo"],
        ["MODEL_COMMAND": "python3", "MODEL_COMMAND_TIMEOUT_SECONDS": "soon"],
        ["MODEL_COMMAND": "python3", "MODEL_COMMAND_TIMEOUT_SECONDS": "-1"],
    ])
    func rejectsSettingsItCannotUse(environment: [String: String]) {
        #expect(throws: ModelCatalog.ConfigurationError.self) { try ModelCatalog.fromEnvironment(environment) }
    }

    @Test func laterModelsReplaceEarlierOnesOfTheSameName() {
        let catalog = ModelCatalog([
            NoopModel(), DemoAudioModel(), CommandModel(name: "noop", executable: "true", arguments: [], timeout: nil),
        ])
        #expect(catalog.names == ["noop", "demo"])
        #expect(catalog.model(named: "noop") is CommandModel)
    }
}
