"""The run state machine: plan steps, run enrichments in parallel, evaluate conditions, gate on approval, execute
actions once, wait, write back, roll back. Pure: it reaches actions and storage only through small interfaces."""
