// Transitional: the rules engine's headers now sit beside their sources (src/rules/). This name
// stays only for sources not yet switched to "rules/rules_control.h" (src/app).
#pragma once

#include "rules/rules_control.h"
