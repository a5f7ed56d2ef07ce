// Pages with nothing but translated text.
import { startI18n } from "./i18n.js";

startI18n();
