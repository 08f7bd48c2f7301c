// Applications to jobs. An application carries its own copy of the job (event-carried state
// transfer): its readers never look the job up, and the read side keeps the copy current as the
// job changes. Published on the `application` topic, keyed by application id.

/// What an application knows of its job: the job's state at the version it was copied from.
public struct JobCopy: Codable, Hashable, Sendable {
    public var title: String
    public var description: String
    /// OPEN or ARCHIVED.
    public var status: String
    /// The job's stream version the copy was taken at (later copies win).
    public var version: Int64

    public init(title: String, description: String, status: String, version: Int64) {
        self.title = title
        self.description = description
        self.status = status
        self.version = version
    }
}

/// A candidate applied to a job.
public struct ApplicationCreated: DomainEvent {
    public static let eventType = "ApplicationCreated"
    public var applicationId: String
    public var jobId: String
    public var firstName: String
    public var lastName: String
    public var email: String
    public var currentPosition: String
    /// The job as the command side found it when the application was made.
    public var job: JobCopy

    public init(
        applicationId: String, jobId: String, firstName: String, lastName: String, email: String, currentPosition: String, job: JobCopy
    ) {
        self.applicationId = applicationId
        self.jobId = jobId
        self.firstName = firstName
        self.lastName = lastName
        self.email = email
        self.currentPosition = currentPosition
        self.job = job
    }
}

/// An application as its events leave it.
public struct Application: Aggregate, Hashable {
    public static let category = "Application"
    public static let topic = "application"
    public static let eventTypes: [any DomainEvent.Type] = [ApplicationCreated.self]

    public var isCreated = false
    public var jobId = ""

    public init() {}

    public mutating func apply(_ event: any DomainEvent) {
        if let created = event as? ApplicationCreated { (isCreated, jobId) = (true, created.jobId) }
    }
}

/// Applies to a job. The job is looked up by the command side in its own event store (never on
/// the read side, which may lag) and handed in as `job` (nil: it does not exist): the decision
/// stays pure. The lookup and the append are not one transaction: an archive landing between them
/// lets one application through, which the job's owner sees on the archived job's applications.
public struct CreateApplication: AggregateCommand {
    public typealias Target = Application
    public static let expectation = StreamExpectation.new
    public var aggregateId: String
    public var jobId: String
    public var firstName: String
    public var lastName: String
    public var email: String
    public var currentPosition: String
    /// The job and its version, as found in the event store; nil when there is no such job.
    public var job: (state: Job, version: Int64)?

    public init(
        applicationId: String, jobId: String, firstName: String, lastName: String, email: String, currentPosition: String,
        job: (state: Job, version: Int64)?
    ) {
        self.aggregateId = applicationId
        self.jobId = jobId
        self.firstName = firstName
        self.lastName = lastName
        self.email = email
        self.currentPosition = currentPosition
        self.job = job
    }

    public func validate() -> [Violation] {
        var violations: [Violation] = []
        Rules.checkId(aggregateId, field: "applicationId", into: &violations)
        Rules.checkId(jobId, field: "jobId", into: &violations)
        Rules.checkText(firstName, field: "firstName", maxLength: 100, into: &violations)
        Rules.checkText(lastName, field: "lastName", maxLength: 100, into: &violations)
        if !Customer.isEmail(email) { violations.append(Violation("email", "must be an email address")) }
        Rules.checkText(currentPosition, field: "currentPosition", maxLength: 200, into: &violations)
        return violations
    }

    public func decide(_ state: Application, context: DecisionContext) throws(DomainError) -> [any DomainEvent] {
        guard let job, job.state.isCreated else { throw .ruleBroken("job \(jobId) does not exist: there is nothing to apply to") }
        guard !job.state.isArchived else { throw .ruleBroken("job \(jobId) is archived: it takes no more applications") }
        let copy = JobCopy(title: job.state.title, description: job.state.description, status: "OPEN", version: job.version)
        return [
            ApplicationCreated(
                applicationId: aggregateId, jobId: jobId, firstName: firstName, lastName: lastName, email: email,
                currentPosition: currentPosition, job: copy)
        ]
    }
}
