#include "cjail.h"
