// qdet's minimal AXI-Stream side-channel word for C simulation (Vitis HLS has its own ap_axi_sdata.h).
// Only what qdet's tops use: data, keep, strb and last (no user, id or dest bits).
#ifndef QDET_AP_AXI_SDATA_H
#define QDET_AP_AXI_SDATA_H

#include "ap_int.h"

template <int D, int U = 0, int TI = 0, int TD = 0>
struct ap_axiu {
  ap_uint<D> data;
  ap_uint<(D + 7) / 8> keep;
  ap_uint<(D + 7) / 8> strb;
  ap_uint<1> last;
};

#endif  // QDET_AP_AXI_SDATA_H
