import Functions
import MartletRuntime

// The one executable every function ships; `_HANDLER` picks the handler.
let environment = ProcessEnvironment.current
await Runtime.main(Application.handlers(environment: environment))
