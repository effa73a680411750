#pragma once
// See ../../README.md: declarations only.
