// The job board of the TypeScript event-sourcing sample app: jobs are created, updated and
// archived; candidates apply to open jobs (Application.swift). Jobs are published on the `job`
// topic, keyed by job id.

/// A job was posted.
public struct JobCreated: DomainEvent {
    public static let eventType = "JobCreated"
    public var jobId: String
    public var title: String
    public var description: String

    public init(jobId: String, title: String, description: String) {
        self.jobId = jobId
        self.title = title
        self.description = description
    }
}

/// A job's title and description were replaced.
public struct JobUpdated: DomainEvent {
    public static let eventType = "JobUpdated"
    public var jobId: String
    public var title: String
    public var description: String

    public init(jobId: String, title: String, description: String) {
        self.jobId = jobId
        self.title = title
        self.description = description
    }
}

/// A job was archived: it takes no more updates or applications.
public struct JobArchived: DomainEvent {
    public static let eventType = "JobArchived"
    public var jobId: String

    public init(jobId: String) { self.jobId = jobId }
}

/// A job as its events leave it.
public struct Job: Aggregate, Hashable {
    public static let category = "Job"
    public static let topic = "job"
    public static let eventTypes: [any DomainEvent.Type] = [JobCreated.self, JobUpdated.self, JobArchived.self]
    public static let maxTitleLength = 200
    public static let maxDescriptionLength = 5000

    public var isCreated = false
    public var title = ""
    public var description = ""
    public var isArchived = false

    public init() {}

    public mutating func apply(_ event: any DomainEvent) {
        switch event {
        case let created as JobCreated:
            (isCreated, title, description) = (true, created.title, created.description)
        case let updated as JobUpdated:
            (title, description) = (updated.title, updated.description)
        case is JobArchived:
            isArchived = true
        default:
            break
        }
    }

    /// What CreateJob and UpdateJob check alike: the id, and a title and description not blank
    /// and bounded.
    static func violations(jobId: String, title: String, description: String) -> [Violation] {
        var violations: [Violation] = []
        Rules.checkId(jobId, field: "jobId", into: &violations)
        Rules.checkText(title, field: "title", maxLength: maxTitleLength, into: &violations)
        Rules.checkText(description, field: "description", maxLength: maxDescriptionLength, into: &violations)
        return violations
    }
}

/// Posts a job. The seed's "version -1 means new" is this command's expectation: the job must not
/// exist yet.
public struct CreateJob: AggregateCommand {
    public typealias Target = Job
    public static let expectation = StreamExpectation.new
    public var aggregateId: String
    public var title: String
    public var description: String

    public init(jobId: String, title: String, description: String) {
        self.aggregateId = jobId
        self.title = title
        self.description = description
    }

    public func validate() -> [Violation] { Job.violations(jobId: aggregateId, title: title, description: description) }

    public func decide(_ state: Job, context: DecisionContext) throws(DomainError) -> [any DomainEvent] {
        [JobCreated(jobId: aggregateId, title: title, description: description)]
    }
}

/// Replaces a job's title and description; the client's version (the one it read) is checked by
/// the command side as every expected version is.
public struct UpdateJob: AggregateCommand {
    public typealias Target = Job
    public static let expectation = StreamExpectation.existing
    public var aggregateId: String
    public var title: String
    public var description: String

    public init(jobId: String, title: String, description: String) {
        self.aggregateId = jobId
        self.title = title
        self.description = description
    }

    public func validate() -> [Violation] { Job.violations(jobId: aggregateId, title: title, description: description) }

    public func decide(_ state: Job, context: DecisionContext) throws(DomainError) -> [any DomainEvent] {
        guard !state.isArchived else { throw .ruleBroken("job \(aggregateId) is archived: it cannot be updated") }
        return [JobUpdated(jobId: aggregateId, title: title, description: description)]
    }
}

/// Archives a job.
public struct ArchiveJob: AggregateCommand {
    public typealias Target = Job
    public static let expectation = StreamExpectation.existing
    public var aggregateId: String

    public init(jobId: String) { self.aggregateId = jobId }

    public func validate() -> [Violation] {
        var violations: [Violation] = []
        Rules.checkId(aggregateId, field: "jobId", into: &violations)
        return violations
    }

    public func decide(_ state: Job, context: DecisionContext) throws(DomainError) -> [any DomainEvent] {
        guard !state.isArchived else { throw .ruleBroken("job \(aggregateId) is already archived") }
        return [JobArchived(jobId: aggregateId)]
    }
}
