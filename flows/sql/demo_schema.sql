-- The demo operational database: the application's ProjectManagement objects in schema dbo, as
-- described in shared/docs/source-contract.md, quirks included. Names are the real SQL Server names
-- (mixed-case ones quoted). Timestamps are offset-less like SQL Server datetime2: columns noted
-- "local" hold the source server's local time, all others UTC.
-- The generator's own bookkeeping lives in schema pmw_demo, outside the contract.

CREATE SCHEMA dbo;
CREATE SCHEMA pmw_demo;

CREATE TABLE pmw_demo.state (
    singleton boolean PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    seed bigint NOT NULL,
    scale integer NOT NULL,
    seeded_at timestamp NOT NULL,
    clock_at timestamp NOT NULL,   -- the simulated application's "now" (UTC)
    day_number integer NOT NULL    -- days advanced since seeding
);

CREATE TABLE dbo.clients (
    client_id integer PRIMARY KEY,
    client_name varchar(200) NOT NULL,
    contact_name varchar(100),
    contact_email varchar(200),
    contact_phone varchar(40),
    address varchar(200),
    city varchar(100),
    state varchar(50),
    postcode varchar(10),
    country varchar(100)
);

CREATE TABLE dbo.project_types (
    type_id integer PRIMARY KEY,
    type_name varchar(100) NOT NULL
);

CREATE TABLE dbo.users (
    user_id integer PRIMARY KEY,
    name varchar(100) NOT NULL,
    role varchar(50),
    email varchar(200) NOT NULL UNIQUE,
    created_at timestamp NOT NULL
);

CREATE TABLE dbo.projects (
    project_id integer PRIMARY KEY,
    project_name varchar(200) NOT NULL,          -- not unique
    client_id integer REFERENCES dbo.clients (client_id),
    type_id integer REFERENCES dbo.project_types (type_id),
    status varchar(30) NOT NULL,
    priority varchar(20),
    start_date date,
    end_date date,
    area_hectares numeric(10, 2),
    city varchar(100),
    state varchar(50),
    contract_value numeric(18, 2),
    agreed_fee numeric(18, 2),
    created_at timestamp NOT NULL,
    updated_at timestamp                         -- NULL on insert; set only when the app remembers
);

CREATE TABLE dbo.project_aliases (
    pm_project_id integer NOT NULL REFERENCES dbo.projects (project_id) ON DELETE CASCADE,
    alias_name varchar(200) NOT NULL,
    created_at timestamp NOT NULL,
    PRIMARY KEY (pm_project_id, alias_name)
);

CREATE TABLE dbo."ProjectServices" (
    service_id integer PRIMARY KEY,
    project_id integer NOT NULL REFERENCES dbo.projects (project_id) ON DELETE CASCADE,
    phase varchar(50),
    service_code varchar(20) NOT NULL,
    service_name varchar(200) NOT NULL,
    unit_type varchar(20) NOT NULL CHECK (unit_type IN ('review', 'audit', 'lump_sum', 'license')),
    unit_qty numeric(10, 2),
    unit_rate numeric(18, 2),
    lump_sum_fee numeric(18, 2),
    agreed_fee numeric(18, 2) NOT NULL,
    status varchar(20) NOT NULL
        CHECK (status IN ('planned', 'in_progress', 'completed', 'on_hold', 'cancelled')),
    progress_pct numeric(5, 2) NOT NULL DEFAULT 0 CHECK (progress_pct BETWEEN 0 AND 100),
    claimed_to_date numeric(18, 2) NOT NULL DEFAULT 0,
    assigned_user_id integer REFERENCES dbo.users (user_id),
    created_at timestamp NOT NULL,
    updated_at timestamp                         -- exists, but not maintained by the application
);
CREATE INDEX ix_projectservices_project_id ON dbo."ProjectServices" (project_id);

CREATE TABLE dbo."ServiceReviews" (
    review_id integer PRIMARY KEY,
    service_id integer NOT NULL REFERENCES dbo."ProjectServices" (service_id) ON DELETE CASCADE,
    cycle_no integer NOT NULL,
    planned_date date NOT NULL,
    due_date date,
    status varchar(20) NOT NULL
        CHECK (status IN ('planned', 'in_progress', 'completed', 'report_issued', 'closed', 'cancelled')),
    weight_factor numeric(5, 2) NOT NULL DEFAULT 1,
    disciplines varchar(200),
    deliverables varchar(400),
    actual_issued_at timestamp,                  -- local
    assigned_user_id integer REFERENCES dbo.users (user_id)
);
CREATE INDEX ix_servicereviews_service_id ON dbo."ServiceReviews" (service_id);

CREATE TABLE dbo."IssueCategories" (
    category_id integer PRIMARY KEY,
    category_name varchar(100) NOT NULL,         -- not unique across levels
    parent_category_id integer REFERENCES dbo."IssueCategories" (category_id),
    category_level smallint NOT NULL CHECK (category_level BETWEEN 1 AND 3),
    is_active boolean NOT NULL DEFAULT TRUE,
    created_at timestamp NOT NULL,
    updated_at timestamp NOT NULL
);
CREATE INDEX ix_issuecategories_updated_at ON dbo."IssueCategories" (updated_at);

CREATE TABLE dbo.issue_status_map (
    source_system varchar(20) NOT NULL,
    raw_status varchar(50) NOT NULL,
    normalized_status varchar(30) NOT NULL,
    is_closed boolean NOT NULL,
    PRIMARY KEY (source_system, raw_status)
);

CREATE TABLE dbo.issue_priority_map (
    source_system varchar(20) NOT NULL,
    raw_priority varchar(50) NOT NULL,
    normalized_priority varchar(20),
    PRIMARY KEY (source_system, raw_priority)
);

-- The two trackers' synchronised issue tables, behind the issues view. ACC stores UTC; Revizto
-- stores the server's local time with no offset. Issue numbers are per tracker project.
CREATE TABLE dbo.acc_issues (
    acc_project_id varchar(64) NOT NULL,
    acc_issue_id varchar(64) NOT NULL,
    issue_number integer NOT NULL,
    pm_project_id integer,
    project_name varchar(200) NOT NULL,
    title varchar(500) NOT NULL,
    status varchar(50) NOT NULL,
    priority varchar(50),
    assigned_to varchar(100),
    created_by varchar(100),
    created_at timestamp NOT NULL,
    closed_at timestamp,
    updated_at timestamp NOT NULL,
    is_deleted boolean NOT NULL DEFAULT FALSE,
    deleted_at timestamp,
    PRIMARY KEY (acc_project_id, acc_issue_id)
);
CREATE INDEX ix_acc_issues_updated_at ON dbo.acc_issues (updated_at);

CREATE TABLE dbo.revizto_issues (
    revizto_project_id bigint NOT NULL,
    revizto_issue_id bigint NOT NULL,
    issue_number integer NOT NULL,
    pm_project_id integer,
    project_name varchar(200) NOT NULL,
    title varchar(500) NOT NULL,
    status varchar(50) NOT NULL,
    priority varchar(50),
    assignee varchar(100),
    reporter varchar(100),
    created_local timestamp NOT NULL,            -- local
    closed_local timestamp,                      -- local
    updated_local timestamp NOT NULL,            -- local
    is_deleted boolean NOT NULL DEFAULT FALSE,
    deleted_local timestamp,                     -- local
    PRIMARY KEY (revizto_project_id, revizto_issue_id)
);
CREATE INDEX ix_revizto_issues_updated_local ON dbo.revizto_issues (updated_local);

CREATE VIEW dbo."vw_ProjectManagement_AllIssues" AS
SELECT
    'ACC'::varchar(20) AS source,
    a.issue_number AS issue_id,
    a.acc_issue_id AS source_issue_id,
    a.acc_project_id AS source_project_id,
    a.pm_project_id,
    a.project_name,
    a.title,
    a.status,
    a.priority,
    a.assigned_to AS assignee,
    a.created_by AS author,
    a.created_at,
    a.closed_at,
    a.updated_at AS source_updated_at,
    a.is_deleted,
    a.deleted_at
FROM dbo.acc_issues AS a
UNION ALL
SELECT
    'Revizto'::varchar(20),
    r.issue_number,
    r.revizto_issue_id::varchar(64),
    r.revizto_project_id::varchar(64),
    r.pm_project_id,
    r.project_name,
    r.title,
    r.status,
    r.priority,
    r.assignee,
    r.reporter,
    r.created_local,
    r.closed_local,
    r.updated_local,
    r.is_deleted,
    r.deleted_local
FROM dbo.revizto_issues AS r;

CREATE TABLE dbo."ProcessedIssues" (
    source varchar(20) NOT NULL,
    source_issue_id varchar(64) NOT NULL,
    urgency_score numeric(5, 4),
    complexity_score numeric(5, 4),
    sentiment_score numeric(5, 4),
    categorization_confidence numeric(5, 4),
    discipline_category_id integer REFERENCES dbo."IssueCategories" (category_id),
    primary_category_id integer REFERENCES dbo."IssueCategories" (category_id),
    secondary_category_id integer REFERENCES dbo."IssueCategories" (category_id),
    resolution_days integer,
    is_recurring boolean NOT NULL DEFAULT FALSE,
    comment_count integer NOT NULL DEFAULT 0,
    processed_at timestamp NOT NULL,             -- local
    processing_version integer NOT NULL DEFAULT 1,
    PRIMARY KEY (source, source_issue_id)
);
CREATE INDEX ix_processedissues_processed_at ON dbo."ProcessedIssues" (processed_at);

-- progress_pct of review-based services is rewritten from their reviews (completed weight over
-- non-cancelled weight) whenever reviews change, without touching updated_at: the application's
-- real trigger does the same. Statement-level, so bulk changes recompute each service once.
CREATE FUNCTION dbo.trg_servicereviews_progress() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH touched AS (
        SELECT service_id FROM changed_reviews
    ),
    progress AS (
        SELECT
            s.service_id,
            COALESCE(
                round(100 * sum(r.weight_factor) FILTER (WHERE r.status IN ('completed', 'report_issued', 'closed'))
                    / NULLIF(sum(r.weight_factor) FILTER (WHERE r.status <> 'cancelled'), 0), 2),
                0
            ) AS progress_pct
        FROM dbo."ProjectServices" AS s
        LEFT JOIN dbo."ServiceReviews" AS r ON r.service_id = s.service_id
        WHERE s.service_id IN (SELECT service_id FROM touched)
            AND s.unit_type IN ('review', 'audit')
        GROUP BY s.service_id
    )
    UPDATE dbo."ProjectServices" AS s
    SET progress_pct = p.progress_pct
    FROM progress AS p
    WHERE s.service_id = p.service_id AND s.progress_pct IS DISTINCT FROM p.progress_pct;
    RETURN NULL;
END;
$$;

CREATE TRIGGER servicereviews_progress_insert AFTER INSERT ON dbo."ServiceReviews"
    REFERENCING NEW TABLE AS changed_reviews
    FOR EACH STATEMENT EXECUTE FUNCTION dbo.trg_servicereviews_progress();
CREATE TRIGGER servicereviews_progress_update AFTER UPDATE ON dbo."ServiceReviews"
    REFERENCING NEW TABLE AS changed_reviews
    FOR EACH STATEMENT EXECUTE FUNCTION dbo.trg_servicereviews_progress();
CREATE TRIGGER servicereviews_progress_delete AFTER DELETE ON dbo."ServiceReviews"
    REFERENCING OLD TABLE AS changed_reviews
    FOR EACH STATEMENT EXECUTE FUNCTION dbo.trg_servicereviews_progress();

-- Which tracker projects exist, so that later days can add issues to them. tp_index numbers the
-- projects of one tracker 0..n-1 for a cheap hash join when issues pick a project.
CREATE TABLE pmw_demo.tracker_project (
    source varchar(20) NOT NULL,
    source_project_id varchar(64) NOT NULL,
    tp_index integer NOT NULL,
    pm_project_id integer,
    project_name varchar(200) NOT NULL,
    created_at timestamp NOT NULL,
    PRIMARY KEY (source, source_project_id),
    UNIQUE (source, tp_index)
);
