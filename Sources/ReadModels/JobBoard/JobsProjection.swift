import Domain
import SQLite

/// The job board's jobs: one row per job with its status and version, from `Job` events.
struct JobsProjection: ReadModelProjection {
    let name = "jobs"
    let tables = [ReadModelTable("jobs", orderBy: "job_id", rebuildIndexes: .secondaryAfterLoading)]
    let eventTypes: Set<String> = [JobCreated.eventType, JobUpdated.eventType, JobArchived.eventType]

    let migrations = [
        ReadModelMigration(version: 1) { sql in
            """
            CREATE TABLE IF NOT EXISTS \(sql.table("jobs"))(
                job_id TEXT PRIMARY KEY, title TEXT NOT NULL, description TEXT NOT NULL, status TEXT NOT NULL,
                version \(sql.int64) NOT NULL, created_at \(sql.int64) NOT NULL, updated_at \(sql.int64) NOT NULL, position \(sql.int64) NOT NULL
            ) \(sql.withoutRowID);
            CREATE INDEX IF NOT EXISTS jobs_by_status ON \(sql.table("jobs"))(status, job_id);
            """
        }
    ]

    func apply(_ event: any DomainEvent, _ stored: ProjectedEvent, to db: any ReadModelDatabase, batch: (any ProjectionBatch)?) throws {
        switch event {
        case let created as JobCreated:
            let changed = try db.run(
                """
                INSERT INTO jobs(job_id, title, description, status, version, created_at, updated_at, position)
                VALUES(?, ?, ?, 'OPEN', ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """,
                .text(created.jobId), .text(created.title), .text(created.description), .integer(stored.streamVersion),
                .integer(stored.recordedAt), .integer(stored.recordedAt), .integer(stored.position))
            guard changed == 1 else { throw ProjectionError("job \(created.jobId) is already in the read model") }
        case let updated as JobUpdated:
            try change(
                updated.jobId, "title = ?, description = ?,", [.text(updated.title), .text(updated.description)], stored, db)
        case let archived as JobArchived:
            try change(archived.jobId, "status = 'ARCHIVED',", [], stored, db)
        default:
            throw ProjectionError("the jobs do not take \(stored.type) events")
        }
    }

    /// Sets `assignments` and the job's version, time and position.
    private func change(
        _ jobId: String, _ assignments: String, _ values: [SQLiteValue], _ stored: ProjectedEvent, _ db: any ReadModelDatabase
    ) throws {
        let changed = try db.run(
            "UPDATE jobs SET \(assignments) version = ?, updated_at = ?, position = ? WHERE job_id = ?",
            values + [.integer(stored.streamVersion), .integer(stored.recordedAt), .integer(stored.position), .text(jobId)])
        guard changed == 1 else { throw ProjectionError("job \(jobId) is not in the read model") }
    }
}

/// The applications, each with its own copy of its job (event-carried state): `ApplicationCreated`
/// brings the copy the command side made; the job's later events bring it up to date. The job
/// and application topics arrive in any order relative to each other, so the projection keeps its
/// own latest knowledge of each job (`job_copies`, never the jobs projection's table) and an
/// application takes whichever copy has the higher job version: live and rebuilt models agree.
struct ApplicationsProjection: ReadModelProjection {
    let name = "applications"
    let tables = [ReadModelTable("applications", orderBy: "application_id"), ReadModelTable("job_copies", orderBy: "job_id")]
    let eventTypes: Set<String> = [ApplicationCreated.eventType, JobCreated.eventType, JobUpdated.eventType, JobArchived.eventType]

    let migrations = [
        ReadModelMigration(version: 1) { sql in
            """
            CREATE TABLE IF NOT EXISTS \(sql.table("applications"))(
                application_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
                email TEXT NOT NULL, current_position TEXT NOT NULL, job_title TEXT NOT NULL, job_description TEXT NOT NULL,
                job_status TEXT NOT NULL, job_version \(sql.int64) NOT NULL, created_at \(sql.int64) NOT NULL, position \(sql.int64) NOT NULL
            ) \(sql.withoutRowID);
            CREATE INDEX IF NOT EXISTS applications_by_job ON \(sql.table("applications"))(job_id, application_id);
            CREATE TABLE IF NOT EXISTS \(sql.table("job_copies"))(
                job_id TEXT PRIMARY KEY, title TEXT NOT NULL, description TEXT NOT NULL, status TEXT NOT NULL, version \(sql.int64) NOT NULL
            ) \(sql.withoutRowID);
            """
        }
    ]

    func apply(_ event: any DomainEvent, _ stored: ProjectedEvent, to db: any ReadModelDatabase, batch: (any ProjectionBatch)?) throws {
        switch event {
        case let created as ApplicationCreated:
            let copy = try heldCopy(of: created.jobId, db).map { $0.version > created.job.version ? $0 : created.job } ?? created.job
            let changed = try db.run(
                """
                INSERT INTO applications(application_id, job_id, first_name, last_name, email, current_position, job_title,
                    job_description, job_status, job_version, created_at, position)
                VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """,
                .text(created.applicationId), .text(created.jobId), .text(created.firstName), .text(created.lastName), .text(created.email),
                .text(created.currentPosition), .text(copy.title), .text(copy.description), .text(copy.status), .integer(copy.version),
                .integer(stored.recordedAt), .integer(stored.position))
            guard changed == 1 else { throw ProjectionError("application \(created.applicationId) is already in the read model") }
        case let created as JobCreated:
            try copy(created.jobId, title: created.title, description: created.description, status: "OPEN", stored, db)
        case let updated as JobUpdated:
            try copy(updated.jobId, title: updated.title, description: updated.description, status: nil, stored, db)
        case let archived as JobArchived:
            try copy(archived.jobId, title: nil, description: nil, status: "ARCHIVED", stored, db)
        default:
            throw ProjectionError("the applications do not take \(stored.type) events")
        }
    }

    /// The latest state of the job this projection has heard of (nil: none yet).
    private func heldCopy(of jobId: String, _ db: any ReadModelDatabase) throws -> JobCopy? {
        try db.first(
            "SELECT title, description, status, version FROM job_copies WHERE job_id = ?", .text(jobId),
            row: { JobCopy(title: $0.text(0), description: $0.text(1), status: $0.text(2), version: $0.int64(3)) })
    }

    /// Records the job's state at this event's version (nil: unchanged by it) when it is newer than
    /// the copy held, and brings every application's copy of the job up to it.
    private func copy(
        _ jobId: String, title: String?, description: String?, status: String?, _ stored: ProjectedEvent, _ db: any ReadModelDatabase
    ) throws {
        // A job's events arrive in order on its partition: the created event is there first.
        let held = try heldCopy(of: jobId, db)
        if let held, held.version >= stored.streamVersion { return }
        guard
            let next = held.map({ held in
                JobCopy(
                    title: title ?? held.title, description: description ?? held.description, status: status ?? held.status,
                    version: stored.streamVersion)
            }) ?? title.map({ JobCopy(title: $0, description: description ?? "", status: status ?? "OPEN", version: stored.streamVersion) })
        else { throw ProjectionError("job \(jobId) is not known to the applications' copies") }
        try db.run(
            """
            INSERT INTO job_copies(job_id, title, description, status, version) VALUES(?, ?, ?, ?, ?)
            ON CONFLICT(job_id) DO UPDATE SET title = excluded.title, description = excluded.description, status = excluded.status,
                version = excluded.version
            """, .text(jobId), .text(next.title), .text(next.description), .text(next.status), .integer(next.version))
        try db.run(
            """
            UPDATE applications SET job_title = ?, job_description = ?, job_status = ?, job_version = ?
            WHERE job_id = ? AND job_version < ?
            """, .text(next.title), .text(next.description), .text(next.status), .integer(next.version), .text(jobId),
            .integer(next.version))
    }
}
