// statement-renderer: renders a customer's monthly statement to PDF on /render.
package com.acme.ledger;

import java.io.IOException;
import java.io.OutputStream;

public final class RenderHandler {
    private final int workers = Integer.parseInt(System.getenv().getOrDefault("RENDER_WORKERS", "4"));

    public void handle(String statementId, OutputStream out) throws IOException {
        byte[] pdf = Renderer.render(statementId, workers);
        out.write(pdf);
    }
}
