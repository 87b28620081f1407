package com.acme.ledger;

import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;

/** Reconciles a day of ledger entries against the bank's statement (new in 4.8.0). */
public final class ReconciliationJob {
    private final EntryRepository entries;
    private final StatementClient statements;

    public ReconciliationJob(EntryRepository entries, StatementClient statements) {
        this.entries = entries;
        this.statements = statements;
    }

    public Report run(LocalDate day) {
        // The whole day is held in memory to match entries in both directions.
        List<Entry> booked = new ArrayList<>(entries.bookedOn(day));
        List<StatementLine> lines = statements.linesFor(day);
        return Report.match(booked, lines);
    }
}
