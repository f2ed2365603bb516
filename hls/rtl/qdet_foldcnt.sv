// qdet_foldcnt: the S0 fold counters qdet_mvau and qdet_vvau share.
//
// For each MAC beat the caller issues (`fire`): sf counts the SF beats of a channel group, nf the NF groups, and
// waddr = nf*SF + sf addresses the weight ROM (its own counter: no multiplier; it wraps once per vector or pixel).
// Under the pipeline enable `en`, the beat's S1 control is registered: v1 (the beat is valid), first1/last1 (first
// and last beat of its group) and nf1 (its group).
module qdet_foldcnt #(
    parameter int SF = 1,
    parameter int NF = 1
) (
    input  logic                                      ap_clk,
    input  logic                                      ap_rst_n,
    input  logic                                      en,
    input  logic                                      fire,
    output logic [(SF > 1 ? $clog2(SF) : 1)-1:0]      sf,
    output logic [(NF > 1 ? $clog2(NF) : 1)-1:0]      nf,
    output logic [(NF * SF > 1 ? $clog2(NF * SF) : 1)-1:0] waddr,
    output logic                                      v1,
    output logic                                      first1,
    output logic                                      last1,
    output logic [(NF > 1 ? $clog2(NF) : 1)-1:0]      nf1
);
    localparam int SFB = SF > 1 ? $clog2(SF) : 1;
    localparam int NFB = NF > 1 ? $clog2(NF) : 1;
    localparam int WAB = NF * SF > 1 ? $clog2(NF * SF) : 1;

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            sf    <= '0;
            nf    <= '0;
            waddr <= '0;
            v1    <= 1'b0;
        end else begin
            if (en) v1 <= fire;
            if (fire) begin
                if (sf == SFB'(SF - 1)) begin
                    sf <= '0;
                    nf <= nf == NFB'(NF - 1) ? '0 : nf + 1'b1;
                end else begin
                    sf <= sf + 1'b1;
                end
                waddr <= waddr == WAB'(NF * SF - 1) ? '0 : waddr + 1'b1;
            end
        end
    end

    always_ff @(posedge ap_clk) begin
        if (en) begin
            first1 <= sf == '0;
            last1  <= sf == SFB'(SF - 1);
            nf1    <= nf;
        end
    end
endmodule
