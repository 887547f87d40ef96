// Precompiled header for the libtorch half: torch/torch.h alone costs ~15 s per translation unit on 2 cores.
#pragma once
#include <torch/torch.h>
