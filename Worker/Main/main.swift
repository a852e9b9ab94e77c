import Foundation
import MartletWorker

#if canImport(Glibc)
import Glibc
#endif

// The GPU container worker (an ECS task): see `WorkerMain`.
exit(await WorkerMain.run(environment: ProcessInfo.processInfo.environment))
