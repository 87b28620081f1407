// search-indexer: receives catalogue changes on /index and writes them to the local index.
package com.acme.search;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

public final class IndexHandler {
    private static final Path INDEX_DIR = Path.of(System.getenv().getOrDefault("INDEX_DIR", "/var/lib/index"));

    public void handle(String documentId, byte[] body) throws IOException {
        Path segment = INDEX_DIR.resolve(documentId.substring(0, 2));
        Files.createDirectories(segment);
        Files.write(segment.resolve(documentId), body);
    }
}
