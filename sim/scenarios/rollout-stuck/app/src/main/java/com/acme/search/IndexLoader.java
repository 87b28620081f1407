package com.acme.search;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Loads the product index before the service reports ready. */
public final class IndexLoader {
    private static final Logger log = LoggerFactory.getLogger(IndexLoader.class);
    private volatile boolean ready;

    /** Since 5.0.0 the index is built from the catalog at every start (no snapshot). */
    public void load(Catalog catalog, Index index) {
        log.info("Building the product index from the catalog (no snapshot)");
        long done = 0;
        for (Document d : catalog.all()) {
            index.add(d);
            if (++done % 10_000 == 0) {
                log.info("Indexed {} documents", done);
            }
        }
        ready = true;
    }

    public boolean ready() {
        return ready;
    }
}
