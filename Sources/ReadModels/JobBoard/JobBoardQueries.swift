import Domain
import SQLite

public struct JobRow: Sendable, Hashable {
    public var jobId: String
    public var title: String
    public var description: String
    public var status: String
    public var version: Int64
    public var createdAt: Int64
    public var updatedAt: Int64
    public var position: Int64
}

public struct ApplicationRow: Sendable, Hashable {
    public var applicationId: String
    public var jobId: String
    public var firstName: String
    public var lastName: String
    public var email: String
    public var currentPosition: String
    /// The application's own copy of its job.
    public var job: JobCopy
    public var createdAt: Int64
    public var position: Int64
}

extension ReadModelStore {
    static let jobColumns = "job_id, title, description, status, version, created_at, updated_at, position"

    static func job(_ row: any ReadModelRow) -> JobRow {
        JobRow(
            jobId: row.text(0), title: row.text(1), description: row.text(2), status: row.text(3), version: row.int64(4),
            createdAt: row.int64(5), updatedAt: row.int64(6), position: row.int64(7))
    }

    public func job(_ jobId: String) throws -> JobRow? {
        try read { db in try db.first("SELECT \(Self.jobColumns) FROM jobs WHERE job_id = ?", .text(jobId), row: Self.job) }
    }

    /// Jobs ordered by id after `after`, of one status when given.
    public func jobs(status: String?, after: String?, limit: Int) throws -> Page<JobRow> {
        let (filter, values): (String, [SQLiteValue]) = status.map { (" AND status = ?", [.text($0)]) } ?? ("", [])
        return try read { db in
            page(
                try db.query(
                    "SELECT \(Self.jobColumns) FROM jobs WHERE job_id > ?\(filter) ORDER BY job_id LIMIT ?",
                    [.text(after ?? "")] + values + [.integer(Int64(limit + 1))], row: Self.job), limit)
        }
    }

    static let applicationColumns = """
        application_id, job_id, first_name, last_name, email, current_position, job_title, job_description, job_status, job_version,
        created_at, position
        """

    static func application(_ row: any ReadModelRow) -> ApplicationRow {
        ApplicationRow(
            applicationId: row.text(0), jobId: row.text(1), firstName: row.text(2), lastName: row.text(3), email: row.text(4),
            currentPosition: row.text(5), job: JobCopy(title: row.text(6), description: row.text(7), status: row.text(8), version: row.int64(9)),
            createdAt: row.int64(10), position: row.int64(11))
    }

    /// One application, read from the applications alone (its job is its own copy).
    public func application(_ applicationId: String) throws -> ApplicationRow? {
        try read { db in
            try db.first(
                "SELECT \(Self.applicationColumns) FROM applications WHERE application_id = ?", .text(applicationId), row: Self.application)
        }
    }

    /// Applications ordered by id after `after`, of one job when given.
    public func applications(jobId: String?, after: String?, limit: Int) throws -> Page<ApplicationRow> {
        let (filter, values): (String, [SQLiteValue]) = jobId.map { (" AND job_id = ?", [.text($0)]) } ?? ("", [])
        return try read { db in
            page(
                try db.query(
                    "SELECT \(Self.applicationColumns) FROM applications WHERE application_id > ?\(filter) ORDER BY application_id LIMIT ?",
                    [.text(after ?? "")] + values + [.integer(Int64(limit + 1))], row: Self.application), limit)
        }
    }
}
