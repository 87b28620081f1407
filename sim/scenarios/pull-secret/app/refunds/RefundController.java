package com.acme.refunds;

import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RestController;

/** Issues refunds against settled payments. */
@RestController
public class RefundController {
    @PostMapping("/refunds")
    public Refund create(@RequestBody RefundRequest request) {
        return Refund.issued(request.paymentId(), request.amount());
    }
}
