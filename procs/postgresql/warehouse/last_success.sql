-- warehouse.last_success
-- Purpose:    the id of the latest run before p_run_id in which step p_step succeeded, or NULL when it
--             never has: incremental fact and bridge loaders re-derive what changed after that run.
-- Parameters: p_step: the step name in ctl.run_step (the procedure's qualified name); p_run_id: this run.
-- Reads:      ctl.run_step.
CREATE OR REPLACE FUNCTION warehouse.last_success(p_step text, p_run_id bigint)
RETURNS bigint
LANGUAGE sql
STABLE
AS $$
    SELECT max(run_id)
    FROM ctl.run_step
    WHERE step_name = p_step AND status = 'success' AND run_id < p_run_id
$$;
