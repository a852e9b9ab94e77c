import Testing

@testable import MartletJobs

@Suite struct JobStoreTests {
    /// DynamoDB refuses names an expression does not use, so each write passes exactly the ones it uses.
    @Test func passesOnlyTheNamesAnExpressionUses() {
        let update = "SET #state = :running, #worker = :worker, #started = if_not_exists(#started, :now) REMOVE #error"
        #expect(JobStore.usedNames(update) == ["#state": "state", "#worker": "workerId", "#started": "startedAt", "#error": "error"])
        #expect(JobStore.usedNames("attribute_exists(jobId) AND (#state = :running AND #lease < :now)") == ["#state": "state", "#lease": "leaseExpiresAt"])
        // A name that is a prefix of another is not taken for it, and unknown names are left out.
        #expect(JobStore.usedNames("SET #stateX = :a, #resultType = :t") == ["#resultType": "resultType"])
        #expect(JobStore.usedNames("SET a = :b") == [:])
    }
}
